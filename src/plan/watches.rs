//! The silent-input watches (`stall_after` on an input, on `[run]` or at the
//! top level): what each watches, under what name, and its alarms by index;
//! and [`indexes_of`], alarm names to indexes, which the expected lines
//! ([`super::rules::hidden_rules`]) share.
//!
//! Which lines are an input's own is the input's to say
//! ([`crate::input::component::InputConfig::sources`]); the plan only asks.

use crate::config::policy::StallOn;
use crate::config::{Config, ConfigError, Origin};
use crate::policy::watch::Silence;
use std::sync::Arc;
use std::time::Duration;

/// Alarm names to indexes into `known`, in order; each name not in `known`
/// is an error at `origin`, naming `what` names it (`on_stall`, `[[expect]]`).
pub(super) fn indexes_of(
    names: &[String],
    known: &[Arc<str>],
    defined: &dyn Fn(&str) -> bool,
    origin: &Origin,
    what: &str,
    errors: &mut Vec<ConfigError>,
) -> Vec<u32> {
    let mut out = Vec::new();
    for name in names {
        match known.iter().position(|k| **k == **name) {
            // A name given twice fires the alarm once, as a rule's alarms do.
            Some(i) if !out.contains(&(i as u32)) => out.push(i as u32),
            Some(_) => {}
            // Written but broken: its own error was reported already.
            None if defined(name) => {}
            None => errors.push(ConfigError::at(
                origin,
                format!("{what} names unknown alarm {name:?}; define it or fix the name"),
            )),
        }
    }
    out
}

/// The silent-input watches, in the order configured: what is watched, its
/// name in notifications (`file:/var/log/a.log`, `child`, empty for every
/// input together), the silence allowed, the alarms as indexes into `known`.
///
/// Errors: an `on_stall` alarm not in `known`; an input whose sources cannot
/// be told (a pattern of its that does not compile), whose watch is left out.
pub(super) fn stall_watches(
    config: &Config,
    known: &[Arc<str>],
    errors: &mut Vec<ConfigError>,
) -> Vec<(Silence, String, Duration, Vec<u32>)> {
    let mut out = Vec::new();
    for (on, def) in &config.stalls {
        let defined = |name: &str| config.defines(name);
        let alarms = indexes_of(
            &def.alarms,
            known,
            &defined,
            &def.origin,
            "on_stall",
            errors,
        );
        let (silence, name) = match on {
            StallOn::Any => (Silence::Any, String::new()),
            StallOn::Child => (Silence::Child, "child".to_owned()),
            StallOn::Input(i) => match config.inputs.get(*i) {
                Some(input) => match input.sources() {
                    Ok(own) => (Silence::Input(own), input.name()),
                    Err(e) => {
                        errors.push(ConfigError::at(&def.origin, e));
                        continue;
                    }
                },
                None => continue,
            },
        };
        out.push((silence, name, def.after, alarms));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::testing::{plan_errors, strings, toml};
    use super::*;
    use logalarm_plugin_api::Source;

    fn known(names: &[&str]) -> Vec<Arc<str>> {
        names.iter().map(|&n| n.into()).collect()
    }

    #[test]
    fn indexes_of_keeps_order_and_reports_each_unknown_name() {
        let at = Origin::Arg { name: "--x".into() };
        let mut errors = Vec::new();
        let broken = |name: &str| name == "broken";
        let names = ["b", "nope", "a", "b", "broken"].map(str::to_owned);
        let got = indexes_of(
            &names,
            &known(&["a", "b"]),
            &broken,
            &at,
            "on_stall",
            &mut errors,
        );
        // Each once; the broken alarm's own error is reported elsewhere.
        assert_eq!(got, [1, 0]);
        assert_eq!(
            strings(&errors),
            ["command line: --x: on_stall names unknown alarm \"nope\"; define it or fix the name"]
        );
    }

    /// A watch's name, silence allowed and alarms.
    type Watch = (String, Duration, Vec<u32>);

    /// The watches of `config` against `names`, as (name, after, alarms),
    /// with their silences, and the errors.
    fn watches(config: &Config, names: &[&str]) -> (Vec<Watch>, Vec<Silence>, Vec<String>) {
        let mut errors = Vec::new();
        let all = stall_watches(config, &known(names), &mut errors);
        let silences = all.iter().map(|(s, ..)| s.clone()).collect();
        let rest = all.into_iter().map(|(_, n, d, a)| (n, d, a)).collect();
        (rest, silences, strings(&errors))
    }

    #[test]
    fn a_file_and_a_socket_input_are_watched_under_their_names() {
        let config = toml(
            r#"[[input]]
file = "/var/log/a.log"
stall_after = "5m"
on_stall = "pager"
[[input]]
socket = "/run/l.sock"
stall_after = "30s"
on_stall = ["mail", "pager"]
[alarm.mail]
action = "log:"
[alarm.pager]
action = "log:"
"#,
        );
        let (got, silences, errors) = watches(&config, &["mail", "pager"]);
        assert_eq!(errors, Vec::<String>::new());
        assert_eq!(
            got,
            [
                (
                    "file:/var/log/a.log".to_owned(),
                    Duration::from_secs(300),
                    vec![1]
                ),
                (
                    "socket:/run/l.sock".to_owned(),
                    Duration::from_secs(30),
                    vec![0, 1]
                ),
            ]
        );
        // Each input's silence is its own lines' absence.
        let Silence::Input(own) = &silences[0] else {
            panic!("{:?}", silences[0]);
        };
        assert!(own(&Source::new(
            "file",
            std::ffi::OsStr::new("/var/log/a.log")
        )));
        assert!(!own(&Source::new(
            "file",
            std::ffi::OsStr::new("/var/log/b.log")
        )));
        // And that is a whole plan's.
        assert_eq!(plan_errors(&config), Vec::<String>::new());
    }

    #[test]
    fn every_input_and_the_child_are_watched_too() {
        let config = toml(
            r#"stall_after = "1m"
on_stall = "a"
[run]
stall_after = "2m"
on_stall = "a"
[alarm.a]
action = "log:"
"#,
        );
        let (got, silences, errors) = watches(&config, &["a"]);
        assert_eq!(errors, Vec::<String>::new());
        assert_eq!(
            got,
            [
                ("child".to_owned(), Duration::from_secs(120), vec![0]),
                (String::new(), Duration::from_secs(60), vec![0]),
            ]
        );
        assert!(matches!(silences[..], [Silence::Child, Silence::Any]));
    }

    #[test]
    fn on_stall_naming_an_unknown_alarm_is_an_error() {
        let config = toml(
            r#"[[input]]
file = "/var/log/a.log"
stall_after = "5m"
on_stall = ["a", "ghost"]
[alarm.a]
action = "log:"
"#,
        );
        let (got, _, errors) = watches(&config, &["a"]);
        assert_eq!(
            errors,
            [
                "t.toml:1: input[1]: on_stall names unknown alarm \"ghost\"; define it or fix the name"
            ]
        );
        assert_eq!(got[0].2, [0], "the known one still fires");
    }
}
