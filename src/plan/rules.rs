//! The rules and what fires alarms besides them: each rule's patterns and
//! alarms by index, the alarms fired without a rule (a wrapped process's
//! exit, uWSGI's `alarm-fd`), and the hidden rules the matcher runs after the
//! configured ones (recovery lines, expected lines).
//!
//! The patterns are parsed here, in the order the matcher takes them: the
//! rules' first, then the hidden rules' ([`hidden_rules`] appends to what
//! [`plan_rules`] returned).

use super::watches::indexes_of;
use super::{HiddenDef, HiddenRule, PlannedRule};
use crate::config::{Config, ConfigError, Origin};
use crate::matcher::compile;
use crate::record::Spec as RecordSpec;
use regex_syntax::hir::Hir;
use std::sync::Arc;

/// Plans each rule: its record spec (a multiline rule), its capture groups,
/// its alarms as indexes into `known` (each once), and its pattern for the
/// matcher (a multiline rule's is its record's `start`), returned beside the
/// rules, in order.
///
/// Errors: a negative rule with `multiline`, a record spec that does not
/// compile, a bad regex, a regex too big (`regex_size_limit`), and an alarm
/// name neither planned nor written
/// (listing those written); a name written but broken has its own error.
pub(super) fn plan_rules(
    config: &Config,
    known: &[Arc<str>],
    errors: &mut Vec<ConfigError>,
) -> (Vec<PlannedRule>, Vec<Hir>) {
    let mut rules = Vec::new();
    let mut hirs = Vec::new();
    let limit = config.settings.regex_size_limit();
    for def in &config.rules {
        // A multiline rule's pattern in the line matcher is its record's `start`.
        let multiline = match &def.multiline {
            Some(ml) if def.negate => {
                errors.push(ConfigError::at(
                    &ml.origin,
                    "a negative rule fires nothing, so it takes no records; remove `multiline` or `negate`",
                ));
                None
            }
            Some(ml) => match RecordSpec::compile(ml, &def.regex) {
                Ok(spec) => Some(Arc::new(spec)),
                Err(message) => {
                    errors.push(ConfigError::at(&ml.origin, message));
                    None
                }
            },
            None => None,
        };
        // Each pattern within the size limit first: one too big is refused in
        // milliseconds, named, before it costs seconds and gigabytes below.
        let parsed = compile::parse(&def.regex).map(|hir| {
            let fits = compile::check_size(&hir, limit);
            (hir, fits)
        });
        // Capture groups come from the rule's own regex (on a record, the whole record).
        let mut captures = None;
        match &parsed {
            Ok((hir, Ok(()))) => match compile::captures(hir) {
                Ok(c) => captures = c.map(Arc::new),
                Err(e) => errors.push(ConfigError::at(&def.origin, e)),
            },
            Ok((_, Err(too_big))) => errors.push(ConfigError::at(&def.origin, too_big.clone())),
            Err(_) => {}
        }
        let pattern = multiline.as_ref().map_or(def.regex.as_str(), |s| &s.start);
        match compile::parse(pattern) {
            Ok(hir) if pattern != def.regex => match compile::check_size(&hir, limit) {
                Ok(()) => hirs.push(hir),
                Err(e) => errors.push(ConfigError::at(&def.origin, e)),
            },
            Ok(hir) => {
                if matches!(parsed, Ok((_, Ok(())))) {
                    hirs.push(hir);
                }
            }
            Err(e) => errors.push(ConfigError::at(&def.origin, format!("bad regex:\n{e}"))),
        }
        rules.push(PlannedRule {
            regex: def.regex.as_str().into(),
            negate: def.negate,
            alarms: rule_alarms(config, &def.alarms, known, &def.origin, errors),
            captures,
            multiline,
            origin: def.origin.clone(),
        });
    }
    (rules, hirs)
}

/// A rule's alarm names as indexes into `known`, each once, in order.
fn rule_alarms(
    config: &Config,
    names: &[String],
    known: &[Arc<str>],
    origin: &Origin,
    errors: &mut Vec<ConfigError>,
) -> Vec<u32> {
    let mut indexes = Vec::new();
    for name in names {
        match known.iter().position(|a| **a == **name) {
            Some(i) if !indexes.contains(&(i as u32)) => indexes.push(i as u32),
            Some(_) => {}
            // Defined but broken: its own error was reported already.
            None if config.defines(name) => {}
            None => {
                // Broken ones too: they were written, only not loaded.
                let mut written: Vec<&str> = config
                    .alarms
                    .iter()
                    .map(|a| a.name.as_str())
                    .chain(config.broken_alarms.iter().map(String::as_str))
                    .collect();
                written.sort_unstable();
                written.dedup();
                errors.push(ConfigError::at(
                    origin,
                    format!(
                        "unknown alarm {name:?}; define it (`alarm = {name} PLUGIN:ARGS` in INI, [alarm.{name}] in TOML) or fix the name (defined: {})",
                        if written.is_empty() { "none".to_owned() } else { written.join(", ") }
                    ),
                ));
            }
        }
    }
    indexes
}

/// Checks the alarms fired without a rule (a wrapped process's exit, uWSGI's
/// `alarm-fd`), and that something is configured at all.
///
/// Errors: one of them naming an alarm not written; `no rules` when there is
/// no rule, no alarm fired without one, no `[[expect]]` and no `stall_after`
/// (unless loading found errors, which say what is wrong already).
pub(super) fn check_direct(config: &Config, errors: &mut Vec<ConfigError>) {
    let direct = config
        .run
        .on_exit
        .iter()
        .map(|(name, origin)| (name, origin, "alarm-segfault/on_exit"))
        .chain(
            config
                .alarm_fds
                .iter()
                .map(|d| (&d.alarm, &d.origin, "alarm-fd")),
        );
    let mut any_direct = false;
    for (name, origin, what) in direct {
        any_direct = true;
        if !config.defines(name) {
            errors.push(ConfigError::at(
                origin,
                format!("{what} names unknown alarm {name:?}; define it or fix the name"),
            ));
        }
    }
    if config.rules.is_empty()
        && !any_direct
        && config.expects.is_empty()
        && config.stalls.is_empty()
        && config.errors.is_empty()
    {
        errors.push(ConfigError {
            origin: None,
            what: "no rules".into(),
            fix: Some("add `log-alarm = ALARM REGEX` (INI), a [[rule]] (TOML) or --log-alarm 'ALARM REGEX'".into()),
        });
    }
}

/// The recovery lines (`resolve`) and expected lines (`[[expect]]`), parsed
/// into `hirs` after the configured rules, in that order.
///
/// Errors: a bad regex; an `[[expect]]` naming an alarm not in `known`.
pub(super) fn hidden_rules(
    config: &Config,
    known: &[Arc<str>],
    hirs: &mut Vec<Hir>,
    errors: &mut Vec<ConfigError>,
) -> Vec<HiddenRule> {
    let mut hidden = Vec::new();
    let limit = config.settings.regex_size_limit();
    let mut add = |regex: &str, origin: &Origin, what: HiddenDef, errors: &mut Vec<ConfigError>| {
        let checked = compile::parse(regex)
            .map_err(|e| format!("bad regex:\n{e}"))
            .and_then(|hir| compile::check_size(&hir, limit).map(|()| hir));
        match checked {
            Ok(hir) => {
                hirs.push(hir);
                hidden.push(HiddenRule {
                    regex: regex.into(),
                    what,
                });
            }
            Err(e) => errors.push(ConfigError::at(origin, e)),
        }
    };
    for (i, def) in config.rules.iter().enumerate() {
        if let Some((regex, origin)) = &def.resolve {
            add(regex, origin, HiddenDef::Resolve(i as u32), errors);
        }
    }
    for e in &config.expects {
        let defined = |name: &str| config.defines(name);
        let alarms = indexes_of(&e.alarms, known, &defined, &e.origin, "[[expect]]", errors);
        add(
            &e.regex,
            &e.origin,
            HiddenDef::Expect(e.within, alarms),
            errors,
        );
    }
    hidden
}

#[cfg(test)]
mod tests {
    use super::super::testing::{ini, plan_errors, strings, toml};
    use super::*;
    use crate::config::args::{CliEntry, build as from_args};
    use std::time::Duration;

    /// The rules planned against `known`, their patterns' count, the errors.
    fn planned(config: &Config, known: &[&str]) -> (Vec<PlannedRule>, usize, Vec<String>) {
        let known: Vec<Arc<str>> = known.iter().map(|&k| k.into()).collect();
        let mut errors = Vec::new();
        let (rules, hirs) = plan_rules(config, &known, &mut errors);
        (rules, hirs.len(), strings(&errors))
    }

    #[test]
    fn a_rules_alarms_become_indexes_each_once() {
        let config = ini("[uwsgi]\nalarm = a log:\nalarm = b log:\n\
             log-alarm = b,a,b ERR\nnot-log-alarm = a DEBUG\n");
        let (rules, patterns, errors) = planned(&config, &["a", "b"]);
        assert_eq!(errors, Vec::<String>::new());
        assert_eq!(patterns, 2);
        let got: Vec<(&str, bool, &[u32])> = rules
            .iter()
            .map(|r| (&*r.regex, r.negate, r.alarms.as_slice()))
            .collect();
        assert_eq!(
            got,
            [("ERR", false, &[1, 0][..]), ("DEBUG", true, &[0][..])]
        );
        assert_eq!(rules[0].origin.to_string(), "a.ini:4: log-alarm");
    }

    #[test]
    fn a_rule_naming_an_unknown_alarm_lists_the_defined_ones() {
        let config = ini("[uwsgi]\nalarm = mailme log:\n\nlog-alarm = mailme,mailem HARAKIRI\n");
        let (rules, _, errors) = planned(&config, &["mailme"]);
        assert_eq!(
            errors,
            [
                "a.ini:4: log-alarm: unknown alarm \"mailem\"; define it (`alarm = mailem PLUGIN:ARGS` in INI, [alarm.mailem] in TOML) or fix the name (defined: mailme)"
            ]
        );
        assert_eq!(rules[0].alarms, [0], "the known one still fires");
    }

    #[test]
    fn an_unknown_alarm_with_none_defined_says_none() {
        let entries = ["a X", "b Y"].map(|value| CliEntry {
            option: "log-alarm",
            value: value.to_owned(),
        });
        let config = from_args(&entries).unwrap_or_else(|e| panic!("{e:?}"));
        let (_, _, errors) = planned(&config, &[]);
        assert_eq!(
            errors,
            [
                "command line: --log-alarm (occurrence 1): unknown alarm \"a\"; define it (`alarm = a PLUGIN:ARGS` in INI, [alarm.a] in TOML) or fix the name (defined: none)",
                "command line: --log-alarm (occurrence 2): unknown alarm \"b\"; define it (`alarm = b PLUGIN:ARGS` in INI, [alarm.b] in TOML) or fix the name (defined: none)",
            ]
        );
    }

    #[test]
    fn a_rule_naming_a_broken_alarm_gets_no_second_error() {
        // Broken in the plan (an unknown plugin) …
        let config = ini("[uwsgi]\nalarm = x nope:foo\nlog-alarm = x X\n");
        let (rules, _, errors) = planned(&config, &[]);
        assert_eq!(errors, Vec::<String>::new());
        assert!(rules[0].alarms.is_empty());
        let all = plan_errors(&config);
        assert_eq!(all.len(), 1, "{all:#?}");
        assert!(all[0].starts_with("a.ini:2: alarm: unknown plugin \"nope\""));
        // … or while loading (an unknown key): listed among the defined ones.
        let config = crate::config::toml::load(
            std::path::Path::new("t.toml"),
            "[alarm.mail]\nacton = \"log:\"\n[[rule]]\nregex = \"ERR\"\nalarms = [\"mail\", \"other\"]\n",
        );
        assert_eq!(config.broken_alarms, ["mail"]);
        let (_, _, errors) = planned(&config, &[]);
        assert_eq!(
            errors,
            [
                "t.toml:4: rule[1].regex: unknown alarm \"other\"; define it (`alarm = other PLUGIN:ARGS` in INI, [alarm.other] in TOML) or fix the name (defined: mail)"
            ]
        );
    }

    #[test]
    fn a_bad_regex_is_an_error_at_its_rule() {
        let config = ini("[uwsgi]\nalarm = mailme log:\nlog-alarm = mailme HARAKIRI (ON\n");
        let (rules, patterns, errors) = planned(&config, &["mailme"]);
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert!(
            errors[0].starts_with("a.ini:3: log-alarm: bad regex:\n"),
            "{}",
            errors[0]
        );
        assert!(errors[0].contains("unclosed group"), "{}", errors[0]);
        assert_eq!((rules.len(), patterns), (1, 0));
    }

    #[test]
    fn a_negative_multiline_rule_is_an_error() {
        let config = toml(
            "[alarm.a]\naction = \"log:\"\n\
             [[rule]]\nregex = \"x\"\nalarm = \"a\"\nnegate = true\nmultiline = \"python\"\n",
        );
        let (rules, patterns, errors) = planned(&config, &["a"]);
        assert_eq!(
            errors,
            [
                "t.toml:7: rule[1].multiline: a negative rule fires nothing, so it takes no records; remove `multiline` or `negate`"
            ]
        );
        assert!(rules[0].multiline.is_none());
        assert_eq!(patterns, 1, "the rule's own regex");
    }

    #[test]
    fn a_multiline_rule_matches_lines_by_its_records_start() {
        let config = toml(
            "[alarm.a]\naction = \"log:\"\n\
             [[rule]]\nregex = \"Error (?P<kind>\\\\w+)\"\nalarm = \"a\"\n\
             multiline = { start = \"^BEGIN\", end = \"^END\" }\n",
        );
        let (rules, patterns, errors) = planned(&config, &["a"]);
        assert_eq!(errors, Vec::<String>::new());
        let spec = rules[0].multiline.as_ref().expect("a record spec");
        assert_eq!(spec.start, "^BEGIN");
        assert_eq!(patterns, 1);
        // The groups are the rule's own regex's.
        let captures = rules[0].captures.as_ref().expect("captures");
        assert_eq!(
            captures
                .group_info()
                .to_index(regex_automata::PatternID::ZERO, "kind"),
            Some(1)
        );
    }

    #[test]
    fn alarms_fired_without_rules_must_be_defined() {
        let config = toml(
            "[alarm.a]\naction = \"log:\"\n[run]\non_exit = [\"a\", \"crash\"]\n\
             [[alarm_fd]]\nalarm = \"oom\"\nfd = 3\nmessage = \"OOM\"\n",
        );
        let mut errors = Vec::new();
        check_direct(&config, &mut errors);
        assert_eq!(
            strings(&errors),
            [
                "t.toml:3: run: alarm-segfault/on_exit names unknown alarm \"crash\"; define it or fix the name",
                "t.toml:5: alarm_fd[1]: alarm-fd names unknown alarm \"oom\"; define it or fix the name",
            ]
        );
    }

    #[test]
    fn nothing_configured_is_no_rules() {
        let mut errors = Vec::new();
        check_direct(&Config::default(), &mut errors);
        assert_eq!(
            strings(&errors),
            [
                "no rules; add `log-alarm = ALARM REGEX` (INI), a [[rule]] (TOML) or --log-alarm 'ALARM REGEX'"
            ]
        );
        assert_eq!(
            plan_errors(&ini("[uwsgi]\nalarm = a log:\n")),
            strings(&errors)
        );
    }

    #[test]
    fn an_expected_line_alone_is_something_to_do() {
        let config = toml(
            "[alarm.a]\naction = \"log:\"\n[[expect]]\nregex = \"hb\"\nwithin = \"1m\"\nalarm = \"a\"\n",
        );
        assert_eq!(plan_errors(&config), Vec::<String>::new());
        let config = toml(
            "[alarm.a]\naction = \"log:\"\n[[alarm_fd]]\nalarm = \"a\"\nfd = 3\nmessage = \"OOM\"\n",
        );
        let mut errors = Vec::new();
        check_direct(&config, &mut errors);
        assert_eq!(strings(&errors), Vec::<String>::new());
    }

    #[test]
    fn hidden_rules_are_recoveries_then_expected_lines() {
        let config = toml(
            r#"[alarm.a]
action = "log:"
[alarm.b]
action = "log:"
[[expect]]
regex = "heartbeat"
within = "1m"
alarms = ["b", "a"]
[[rule]]
regex = "DOWN"
alarm = "a"
resolve = "UP"
[[rule]]
regex = "x"
alarm = "a"
[[rule]]
regex = "FULL"
alarm = "b"
resolve = "ROOM"
"#,
        );
        let known: Vec<Arc<str>> = vec!["a".into(), "b".into()];
        let mut errors = Vec::new();
        let (_, mut hirs) = plan_rules(&config, &known, &mut errors);
        let hidden = hidden_rules(&config, &known, &mut hirs, &mut errors);
        assert_eq!(strings(&errors), Vec::<String>::new());
        let got: Vec<String> = hidden
            .iter()
            .map(|h| format!("{} {:?}", h.regex, h.what))
            .collect();
        assert_eq!(
            got,
            [
                "UP Resolve(0)",
                "ROOM Resolve(2)",
                format!(
                    "heartbeat {:?}",
                    HiddenDef::Expect(Duration::from_secs(60), vec![1, 0])
                )
                .as_str(),
            ]
        );
        assert_eq!(
            hirs.len(),
            3 + 3,
            "the rules' patterns, then the hidden ones'"
        );
    }

    #[test]
    fn a_hidden_rules_errors_name_where_it_was_written() {
        let config = toml(
            r#"[alarm.a]
action = "log:"
[[rule]]
regex = "DOWN"
alarm = "a"
resolve = "UP ("
[[expect]]
regex = "hb"
within = "1m"
alarm = "ghost"
"#,
        );
        let mut hirs = Vec::new();
        let mut errors = Vec::new();
        let hidden = hidden_rules(&config, &["a".into()], &mut hirs, &mut errors);
        let errors = strings(&errors);
        assert_eq!(errors.len(), 2, "{errors:#?}");
        assert!(
            errors[0].starts_with("t.toml:6: rule[1].resolve: bad regex:\n"),
            "{}",
            errors[0]
        );
        assert_eq!(
            errors[1],
            "t.toml:7: expect[1]: [[expect]] names unknown alarm \"ghost\"; define it or fix the name"
        );
        assert_eq!(hidden.len(), 1, "the expected line, without its alarm");
        assert_eq!(hirs.len(), 1);
    }
}
