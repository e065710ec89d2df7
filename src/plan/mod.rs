//! Checks a [`Config`] as a whole and builds what runs: each alarm's action
//! (through its plugin) and the compiled [`Matcher`].
//!
//! Every problem is reported at once, each naming where it was written: unknown
//! plugin, bad plugin arguments, a TOML key the plugin does not take, bad
//! `retry` values, a `message` template that does not compile or fails on a
//! sample notification, duplicate alarm name (uWSGI silently keeps the first), a
//! rule naming an unknown alarm, an `on_failure` naming an unknown alarm, the
//! alarm itself or closing a loop, a bad regex, no rules at all.

use crate::config::{AlarmDef, Config, ConfigError, Origin, RetryDef};
use crate::dispatch::registry;
use crate::dispatch::retry::RetryPolicy;
use crate::matcher::{Matcher, Rule};
use crate::policy::chain::Policies;
use crate::policy::watch::{Silence, Watches};
use crate::record::Spec as RecordSpec;
use logalarm_plugin_api::{Action, BuildContext, Plugin};
use logalarm_template::Template;
use std::sync::Arc;
use std::sync::atomic::AtomicI32;
use std::time::Duration;

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
    /// Its policies beyond alarm-freq, compiled.
    pub policy: Policies,
    /// Whether its templates or keys use capture groups (`caps`): only then
    /// are a line's groups extracted.
    pub needs_caps: bool,
    /// The notification's message as a template (TOML `message`), rendered by
    /// the worker before delivery.
    pub message: Option<Arc<Template>>,
    /// Where it was defined.
    pub origin: Origin,
}

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
    // One list, the TOML reader's, so that this one cannot drift from it.
    let engine = crate::config::toml::alarm_engine_keys();
    let mut ok = true;
    for option in &def.options {
        if !takes.contains(&option.key.as_str()) {
            // A typo of an engine key or of one of the plugin's own.
            let known: Vec<&str> = engine.iter().chain(takes.iter()).copied().collect();
            let message = match crate::config::suggest::closest(&option.key, &known) {
                Some(k) => format!("unknown key `{}`; did you mean `{k}`?", option.key),
                None => format!(
                    "unknown key `{}`: every alarm takes {}; {}",
                    option.key,
                    engine.join(", "),
                    listed()
                ),
            };
            errors.push(ConfigError::at(&option.origin, message));
            ok = false;
        }
    }
    for (table, set) in [("headers", &def.headers), ("env", &def.env)] {
        if !set.is_empty() && !takes.contains(&table) {
            errors.push(ConfigError::at(
                &def.origin,
                format!("`{table}` is not for this alarm: {}", listed()),
            ));
            ok = false;
        }
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
        // Compiled (and tried on a sample) here, so that a broken template
        // is a config error naming its key, not a failed delivery.
        let message = match &def.message {
            None => None,
            Some((source, at)) => match Template::compile("message", source) {
                Ok(template) => Some(Arc::new(template)),
                Err(e) => {
                    errors.push(ConfigError::at(at, e));
                    continue;
                }
            },
        };
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
            env: def.env.clone(),
        };
        match plugin.build(&ctx, &def.args) {
            Ok(action) => alarms.push(PlannedAlarm {
                name: def.name.as_str().into(),
                action_text: format!("{}:{}", def.plugin, plugin.redact(&def.args)),
                action,
                queue_size: def
                    .queue_size
                    .unwrap_or_else(|| config.settings.queue_size()),
                retry,
                on_failure: None,
                policy: Policies::default(),
                needs_caps: false,
                message,
                origin: def.origin.clone(),
            }),
            Err(message) => errors.push(ConfigError::at(&def.origin, message)),
        }
    }
    let defined = |name: &str| config.defines(name);
    link_fallbacks(config, &mut alarms, &mut errors);
    link_policies(config, &mut alarms, &mut errors);
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
        let mut indexes = Vec::new();
        for name in &def.alarms {
            match alarms.iter().position(|a| *a.name == **name) {
                Some(i) if !indexes.contains(&(i as u32)) => indexes.push(i as u32),
                Some(_) => {}
                // Defined but broken: its own error was reported already.
                None if defined(name) => {}
                None => {
                    // Broken ones too: they were written, only not loaded.
                    let mut known: Vec<&str> = config
                        .alarms
                        .iter()
                        .map(|a| a.name.as_str())
                        .chain(config.broken_alarms.iter().map(String::as_str))
                        .collect();
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
            captures,
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
    check_caps(config, &alarms, &rules, &mut errors);
    let hidden = hidden_rules(config, &plan_names(&alarms), &mut hirs, &mut errors);
    let stalls = stall_watches(config, &plan_names(&alarms), &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut matcher_rules: Vec<Rule> = rules
        .iter()
        .map(|r| Rule {
            negate: r.negate,
            alarms: r.alarms.clone(),
            record: r.multiline.is_some(),
        })
        .collect();
    matcher_rules.extend(hidden.iter().map(|_| Rule {
        negate: false,
        alarms: Vec::new(),
        record: false,
    }));
    let visible = rules.len();
    let matcher = Matcher::new(&hirs, matcher_rules, alarms.len(), for_report)
        .map(|m| m.hide_from(visible))
        .map_err(|e| {
            vec![ConfigError {
                origin: None,
                what: format!("the rules do not compile together: {e}"),
                fix: None,
            }]
        })?;
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

fn plan_names(alarms: &[PlannedAlarm]) -> Vec<Arc<str>> {
    alarms.iter().map(|a| a.name.clone()).collect()
}

/// Alarm names to indexes; an unknown name is an error at `origin`.
fn indexes_of(
    names: &[String],
    known: &[Arc<str>],
    origin: &Origin,
    what: &str,
    errors: &mut Vec<ConfigError>,
) -> Vec<u32> {
    let mut out = Vec::new();
    for name in names {
        match known.iter().position(|k| **k == **name) {
            Some(i) => out.push(i as u32),
            None => errors.push(ConfigError::at(
                origin,
                format!("{what} names unknown alarm {name:?}; define it or fix the name"),
            )),
        }
    }
    out
}

/// The recovery lines (`resolve`) and expected lines (`[[expect]]`), parsed
/// into `hirs` after the configured rules, in that order.
fn hidden_rules(
    config: &Config,
    known: &[Arc<str>],
    hirs: &mut Vec<regex_syntax::hir::Hir>,
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

/// The silent-input watches (`stall_after`), with their inputs' sources.
fn stall_watches(
    config: &Config,
    known: &[Arc<str>],
    errors: &mut Vec<ConfigError>,
) -> Vec<(Silence, String, Duration, Vec<u32>)> {
    use crate::config::policy::StallOn;
    let mut out = Vec::new();
    for (on, def) in &config.stalls {
        let alarms = indexes_of(&def.alarms, known, &def.origin, "on_stall", errors);
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

/// The capture groups a template refers to: `caps.NAME`, `caps['NAME']`, `caps[N]`.
fn caps_refs(template: &str) -> Vec<String> {
    static REFS: std::sync::LazyLock<Option<regex_automata::meta::Regex>> =
        std::sync::LazyLock::new(|| {
            regex_automata::meta::Regex::new(
                r#"caps\s*(?:\.\s*([A-Za-z_][A-Za-z0-9_]*)|\[\s*(?:'([^']*)'|"([^"]*)"|([0-9]+))\s*\])"#,
            )
            .ok()
        });
    let Some(re) = REFS.as_ref() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for caps in re.captures_iter(template) {
        if let Some(span) = (1..=4).find_map(|g| caps.get_group(g)) {
            out.push(template[span.range()].to_owned());
        }
    }
    out
}

/// Checks that every capture group the alarms' templates name (`caps.ip`)
/// is a group of a rule firing the alarm: a misspelt group would key every
/// event under the empty key, or say nothing, silently. Alarms that get
/// other alarms' notifications (`on_failure`) or no rule's are not checked.
fn check_caps(
    config: &Config,
    alarms: &[PlannedAlarm],
    rules: &[PlannedRule],
    errors: &mut Vec<ConfigError>,
) {
    for def in &config.alarms {
        let Some(me) = alarms.iter().position(|a| *a.name == *def.name) else {
            continue;
        };
        let firing: Vec<&PlannedRule> = rules
            .iter()
            .filter(|r| r.alarms.contains(&(me as u32)))
            .collect();
        let fallback = config
            .alarms
            .iter()
            .any(|a| a.on_failure.as_ref().is_some_and(|(n, _)| *n == def.name));
        if firing.is_empty() || fallback {
            continue;
        }
        let mut names: Vec<String> = Vec::new();
        let mut groups = 1;
        for r in &firing {
            if let Some(re) = &r.captures {
                let info = re.group_info();
                groups = groups.max(info.group_len(regex_automata::PatternID::ZERO));
                names.extend(
                    info.pattern_names(regex_automata::PatternID::ZERO)
                        .flatten()
                        .map(str::to_owned),
                );
            }
        }
        names.sort_unstable();
        names.dedup();
        for (template, origin) in def.templates() {
            for group in caps_refs(template) {
                let known = match group.parse::<usize>() {
                    Ok(n) => n < groups,
                    Err(_) => names.contains(&group),
                };
                if !known {
                    let have = if groups == 1 {
                        "they have no capture groups".to_owned()
                    } else if names.is_empty() {
                        format!("they have groups 1 to {} and no named one", groups - 1)
                    } else {
                        format!(
                            "theirs: {}; numbered up to {}",
                            names.join(", "),
                            groups - 1
                        )
                    };
                    let fix = if group.parse::<usize>().is_ok() {
                        "fix the number (group 0 is the whole match)".to_owned()
                    } else {
                        format!("fix the name or add `(?P<{group}>…)` to the rule")
                    };
                    errors.push(ConfigError::at(
                        origin,
                        format!(
                            "`caps` group {group:?} is in no rule firing alarm {:?} ({have}); {fix}",
                            def.name
                        ),
                    ));
                }
            }
        }
    }
}

/// Builds each alarm's policies (see [`crate::policy::component`]) in chain
/// order, with its key; and finds whether the alarm needs capture groups.
fn link_policies(config: &Config, alarms: &mut [PlannedAlarm], errors: &mut Vec<ConfigError>) {
    use crate::policy::component::{BuildContext, DEFAULT_MAX_KEYS, KINDS};
    let names: Vec<Arc<str>> = alarms.iter().map(|a| a.name.clone()).collect();
    let index = |name: &str| {
        names
            .iter()
            .position(|n| **n == *name)
            .and_then(|i| u32::try_from(i).ok())
    };
    let defines = |name: &str| config.defines(name);
    for def in &config.alarms {
        let Some(me) = alarms.iter().position(|a| *a.name == *def.name) else {
            continue;
        };
        let p = &def.policy;
        let cx = BuildContext {
            alarm: &def.name,
            me: u32::try_from(me).unwrap_or(u32::MAX),
            max_keys: p.max_keys.unwrap_or(DEFAULT_MAX_KEYS),
            alarm_index: &index,
            defines: &defines,
        };
        let mut ok = true;
        let key = match &p.key {
            None => None,
            Some(k) => match cx.key(&k.template, "key", &k.origin) {
                Ok(key) => Some(key),
                Err(e) => {
                    errors.push(e);
                    ok = false;
                    None
                }
            },
        };
        let mut list = Vec::new();
        // Chain order, whatever the order written.
        for kind in KINDS {
            for config in p.list.iter().filter(|c| std::ptr::eq(c.kind(), *kind)) {
                match config.build(&cx) {
                    Ok(policy) => list.push(policy),
                    Err(e) => {
                        errors.extend(e);
                        ok = false;
                    }
                }
            }
        }
        // Any mention (`{% for name in caps %}` too), not only `caps.NAME`.
        let needs_caps = def.templates().any(|(text, _)| text.contains("caps"));
        if ok {
            alarms[me].policy = Policies { key, list };
        }
        alarms[me].needs_caps = needs_caps;
    }
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
