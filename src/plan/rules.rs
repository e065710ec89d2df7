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
use crate::record::Spec as RecordSpec;
use regex_syntax::hir::Hir;
use std::sync::Arc;

/// Plans each rule: its record spec (a multiline rule), its capture groups,
/// its alarms as indexes into `known` (each once), and its pattern for the
/// matcher (a multiline rule's is its record's `start`), returned beside the
/// rules, in order.
///
/// Errors: a negative rule with `multiline`, a record spec that does not
/// compile, a bad regex, and an alarm name neither planned nor written
/// (listing those written); a name written but broken has its own error.
pub(super) fn plan_rules(
    config: &Config,
    known: &[Arc<str>],
    errors: &mut Vec<ConfigError>,
) -> (Vec<PlannedRule>, Vec<Hir>) {
    let mut rules = Vec::new();
    let mut hirs = Vec::new();
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
        // Capture groups come from the rule's own regex (on a record, the whole record).
        let mut captures = None;
        if let Ok(hir) = crate::matcher::compile::parse(&def.regex) {
            match crate::matcher::compile::captures(&hir) {
                Ok(c) => captures = c.map(Arc::new),
                Err(e) => errors.push(ConfigError::at(&def.origin, e)),
            }
        }
        let pattern = multiline.as_ref().map_or(def.regex.as_str(), |s| &s.start);
        match crate::matcher::compile::parse(pattern) {
            Ok(hir) => hirs.push(hir),
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
    let mut add = |regex: &str, origin: &Origin, what: HiddenDef, errors: &mut Vec<ConfigError>| {
        match crate::matcher::compile::parse(regex) {
            Ok(hir) => {
                hirs.push(hir);
                hidden.push(HiddenRule {
                    regex: regex.into(),
                    what,
                });
            }
            Err(e) => errors.push(ConfigError::at(origin, format!("bad regex:\n{e}"))),
        }
    };
    for (i, def) in config.rules.iter().enumerate() {
        if let Some((regex, origin)) = &def.resolve {
            add(regex, origin, HiddenDef::Resolve(i as u32), errors);
        }
    }
    for e in &config.expects {
        let alarms = indexes_of(&e.alarms, known, &e.origin, "[[expect]]", errors);
        add(
            &e.regex,
            &e.origin,
            HiddenDef::Expect(e.within, alarms),
            errors,
        );
    }
    hidden
}
