//! Checks a [`Config`] as a whole and builds what runs: each alarm's action
//! (through its plugin) and the compiled [`Matcher`].
//!
//! Every problem is reported at once, each naming where it was written: unknown
//! plugin, bad plugin arguments, a TOML key the plugin does not take, bad
//! `retry` values, duplicate alarm name (uWSGI silently keeps the first), a
//! rule naming an unknown alarm, an `on_failure` naming an unknown alarm, the
//! alarm itself or closing a loop, a bad regex, no rules at all.

use crate::config::{AlarmDef, Config, ConfigError, Origin, RetryDef};
use crate::dispatch::registry;
use crate::dispatch::retry::RetryPolicy;
use crate::matcher::{Matcher, Rule};
use crate::record::Spec;
use logalarm_plugin_api::{Action, BuildContext, Plugin};
use std::sync::Arc;
use std::sync::atomic::AtomicI32;

/// One alarm, ready to run.
pub struct PlannedAlarm {
    /// Its name.
    pub name: Arc<str>,
    /// `PLUGIN:ARGS` as written, for reports.
    pub action_text: String,
    /// The built action.
    pub action: Box<dyn Action>,
    /// Its queue capacity, in notifications.
    pub queue_size: usize,
    /// How its failed deliveries are retried.
    pub retry: RetryPolicy,
    /// The alarm (index into [`Plan::alarms`]) that gets its notifications
    /// that failed for good (`on_failure`).
    pub on_failure: Option<usize>,
    /// Where it was defined.
    pub origin: Origin,
}

/// The keys every TOML alarm takes, whatever its plugin.
const ENGINE_KEYS: &str = "action, timeout, queue_size, retry, on_failure";

/// Checks that the plugin takes each of the alarm's plugin keys (and `headers`).
fn check_options(def: &AlarmDef, plugin: &dyn Plugin, errors: &mut Vec<ConfigError>) -> bool {
    let takes = plugin.options();
    let listed = || {
        if takes.is_empty() {
            format!("the {} plugin takes no other key", plugin.name())
        } else {
            format!("the {} plugin takes {}", plugin.name(), takes.join(", "))
        }
    };
    let mut ok = true;
    for option in &def.options {
        if !takes.contains(&option.key.as_str()) {
            errors.push(ConfigError::at(
                &option.origin,
                format!(
                    "unknown key `{}`: every alarm takes {ENGINE_KEYS}; {}",
                    option.key,
                    listed()
                ),
            ));
            ok = false;
        }
    }
    if !def.headers.is_empty() && !takes.contains(&"headers") {
        errors.push(ConfigError::at(
            &def.origin,
            format!("`headers` is not for this alarm: {}", listed()),
        ));
        ok = false;
    }
    ok
}

/// The alarm's retry policy: what it sets over the plugin's default.
fn retry_policy(retry: &RetryDef, plugin: &dyn Plugin) -> RetryPolicy {
    let base = if plugin.retries() {
        RetryPolicy::NETWORK
    } else {
        RetryPolicy::LOCAL
    };
    RetryPolicy {
        attempts: retry.attempts.unwrap_or(base.attempts),
        deadline: retry.deadline.unwrap_or(base.deadline),
        delay: retry.delay.unwrap_or(base.delay),
        max_delay: retry.max_delay.unwrap_or(base.max_delay.max(
            // A delay set above the default cap raises the cap with it.
            retry.delay.unwrap_or_default(),
        )),
    }
}

/// One rule, for reports.
#[derive(Clone, Debug)]
pub struct PlannedRule {
    /// The regex as written (shared with every notification it fires).
    pub regex: Arc<str>,
    /// Negative rule.
    pub negate: bool,
    /// Indexes into [`Plan::alarms`].
    pub alarms: Vec<u32>,
    /// A multiline rule's record spec ([`crate::record`]).
    pub multiline: Option<Arc<Spec>>,
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
}

/// Checks `config` and builds the plan; `for_report` builds the matcher for
/// `logalarm test`, which also reports lines matching only negative rules.
///
/// # Errors
/// Every problem found, each with its origin and the fix.
pub fn build(config: &Config, for_report: bool, wrap: bool) -> Result<Plan, Vec<ConfigError>> {
    let plugins = registry::plugins();
    let child_pid = wrap.then(|| Arc::new(AtomicI32::new(0)));
    // Errors found while loading come first; checking goes on so all show at once.
    let mut errors = config.errors.clone();
    let mut alarms: Vec<PlannedAlarm> = Vec::new();
    for (i, def) in config.alarms.iter().enumerate() {
        // Against every earlier definition, built or not, so a broken first one still counts.
        if let Some(first) = config.alarms[..i].iter().find(|a| a.name == def.name) {
            errors.push(ConfigError::at(
                &def.origin,
                format!(
                    "duplicate alarm name {:?}, first defined at {}; rename one of them",
                    def.name, first.origin
                ),
            ));
            continue;
        }
        let Some(plugin) = plugins.iter().find(|p| p.name() == def.plugin) else {
            let known: Vec<_> = plugins.iter().map(|p| p.name()).collect();
            let hint = registry::missing_hint(&def.plugin)
                .map(|h| format!("; {h}"))
                .unwrap_or_default();
            errors.push(ConfigError::at(
                &def.origin,
                format!(
                    "unknown plugin {:?} (this build has: {}){hint}",
                    def.plugin,
                    known.join(", ")
                ),
            ));
            continue;
        };
        if !check_options(def, plugin.as_ref(), &mut errors) {
            continue;
        }
        let retry = retry_policy(&def.retry, plugin.as_ref());
        if let Err(message) = retry.check() {
            errors.push(ConfigError::at(
                def.retry.origin.as_ref().unwrap_or(&def.origin),
                message,
            ));
            continue;
        }
        let ctx = BuildContext {
            alarm: def.name.clone(),
            timeout: def.timeout,
            child: child_pid.clone(),
            options: def
                .options
                .iter()
                .map(|o| (o.key.clone(), o.value.clone()))
                .collect(),
            headers: def.headers.clone(),
        };
        match plugin.build(&ctx, &def.args) {
            Ok(action) => alarms.push(PlannedAlarm {
                name: def.name.as_str().into(),
                action_text: format!("{}:{}", def.plugin, plugin.redact(&def.args)),
                action,
                queue_size: def.queue_size.unwrap_or_else(|| config.queue_size()),
                retry,
                on_failure: None,
                origin: def.origin.clone(),
            }),
            Err(message) => errors.push(ConfigError::at(&def.origin, message)),
        }
    }
    let defined = |name: &str| config.alarms.iter().any(|a| a.name == name);
    link_fallbacks(config, &mut alarms, &mut errors);
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
            Some(ml) => match Spec::compile(ml, &def.regex) {
                Ok(spec) => Some(Arc::new(spec)),
                Err(message) => {
                    errors.push(ConfigError::at(&ml.origin, message));
                    None
                }
            },
            None => None,
        };
        let pattern = multiline.as_ref().map_or(def.regex.as_str(), |s| &s.start);
        match crate::matcher::compile::parse(pattern) {
            Ok(hir) => hirs.push(hir),
            Err(e) => errors.push(ConfigError::at(&def.origin, format!("bad regex:\n{e}"))),
        }
        let mut indexes = Vec::new();
        for name in &def.alarms {
            match alarms.iter().position(|a| *a.name == **name) {
                Some(i) if !indexes.contains(&(i as u32)) => indexes.push(i as u32),
                Some(_) => {}
                // Defined but broken: its own error was reported already.
                None if defined(name) => {}
                None => {
                    let mut known: Vec<&str> =
                        config.alarms.iter().map(|a| a.name.as_str()).collect();
                    known.sort_unstable();
                    known.dedup();
                    errors.push(ConfigError::at(
                        &def.origin,
                        format!(
                            "unknown alarm {name:?}; define it (`alarm = {name} PLUGIN:ARGS` in INI, [alarm.{name}] in TOML) or fix the name (defined: {})",
                            if known.is_empty() { "none".to_owned() } else { known.join(", ") }
                        ),
                    ));
                }
            }
        }
        rules.push(PlannedRule {
            regex: def.regex.as_str().into(),
            negate: def.negate,
            alarms: indexes,
            multiline,
            origin: def.origin.clone(),
        });
    }
    // Alarms fired without rules: a wrapped process's exit, uWSGI's alarm-fd.
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
        if !defined(name) {
            errors.push(ConfigError::at(
                origin,
                format!("{what} names unknown alarm {name:?}; define it or fix the name"),
            ));
        }
    }
    if config.rules.is_empty() && !any_direct && config.errors.is_empty() {
        errors.push(ConfigError {
            at: String::new(),
            message: "no rules: add `log-alarm = ALARM REGEX` (INI), a [[rule]] (TOML) or --log-alarm 'ALARM REGEX'"
                .into(),
        });
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let matcher_rules = rules
        .iter()
        .map(|r| Rule {
            negate: r.negate,
            alarms: r.alarms.clone(),
            record: r.multiline.is_some(),
        })
        .collect();
    let matcher = Matcher::new(&hirs, matcher_rules, alarms.len(), for_report).map_err(|e| {
        vec![ConfigError {
            at: String::new(),
            message: format!("the rules do not compile together: {e}"),
        }]
    })?;
    Ok(Plan {
        alarms,
        rules,
        matcher,
        child_pid,
    })
}

/// Resolves each alarm's `on_failure` to the index of its fallback alarm.
///
/// Errors: an unknown alarm, the alarm itself, or a loop (A falls back to B
/// and B, maybe through others, to A: a notification would circle forever).
fn link_fallbacks(config: &Config, alarms: &mut [PlannedAlarm], errors: &mut Vec<ConfigError>) {
    for def in &config.alarms {
        let Some((to, at)) = &def.on_failure else {
            continue;
        };
        if *to == def.name {
            errors.push(ConfigError::at(
                at,
                format!("alarm {to:?} cannot be its own on_failure alarm; name another alarm"),
            ));
            continue;
        }
        let Some(target) = alarms.iter().position(|a| *a.name == **to) else {
            if !config.alarms.iter().any(|a| a.name == *to) {
                errors.push(ConfigError::at(
                    at,
                    format!("on_failure names unknown alarm {to:?}; define it or fix the name"),
                ));
            }
            // Defined but broken: its own error was reported already.
            continue;
        };
        if let Some(me) = alarms.iter().position(|a| *a.name == *def.name) {
            alarms[me].on_failure = Some(target);
        }
    }
    // A loop through fallbacks: follow each chain; it ends within as many
    // steps as there are alarms, or comes back to where it started (reported
    // once, from the loop's first alarm in definition order).
    for start in 0..alarms.len() {
        let mut chain = vec![start];
        let mut at = alarms[start].on_failure;
        while let Some(next) = at {
            if next == start {
                if chain.iter().all(|&i| i >= start) {
                    let names: Vec<&str> = chain.iter().map(|&i| &*alarms[i].name).collect();
                    let origin = config
                        .alarms
                        .iter()
                        .find(|d| *d.name == *alarms[start].name)
                        .and_then(|d| d.on_failure.as_ref().map(|(_, o)| o))
                        .unwrap_or(&alarms[start].origin);
                    errors.push(ConfigError::at(
                        origin,
                        format!(
                            "on_failure alarms form a loop ({} -> {}); end the chain at an alarm without on_failure",
                            names.join(" -> "),
                            names[0]
                        ),
                    ));
                }
                break;
            }
            if chain.len() > alarms.len() {
                // A loop not through `start`: reported from its own members.
                break;
            }
            chain.push(next);
            at = alarms[next].on_failure;
        }
    }
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
