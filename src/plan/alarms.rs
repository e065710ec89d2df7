//! The alarms: each one built through its plugin, then their `on_failure`
//! fallbacks resolved to indexes.
//!
//! An alarm is built only when everything about it is right: a name no
//! earlier alarm has, a plugin this build has, plugin keys that plugin takes,
//! `retry` values that make sense, a `message` template that compiles, and
//! arguments the plugin accepts. One that is not is left out of the plan, its
//! error reported; the steps after this one then treat its name as "defined
//! but broken" ([`Config::defines`]), so that what names it gets no second
//! error.

use crate::config::{AlarmDef, Config, ConfigError, Origin, RetryDef};
use crate::dispatch::registry;
use crate::dispatch::retry::RetryPolicy;
use crate::policy::chain::Policies;
use logalarm_plugin_api::{Action, BuildContext, Plugin};
use logalarm_template::Template;
use std::sync::Arc;
use std::sync::atomic::AtomicI32;

use crate::config::toml::MAX_CONCURRENCY;

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
    /// Deliveries under way at once (1: one after another, in order).
    pub concurrency: usize,
    /// How its failed deliveries are retried.
    pub retry: RetryPolicy,
    /// The alarm (index into [`super::Plan::alarms`]) that gets its notifications
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

/// Builds each alarm of `config` through its plugin, in definition order;
/// `child_pid` is shared with the actions that target a wrapped process.
/// The alarms come without `on_failure` and policies ([`link_fallbacks`],
/// [`super::policies::link_policies`]).
///
/// Errors, one per alarm left out: a duplicate name, an unknown plugin (with
/// the plugins of this build), a key the plugin does not take, bad `retry`
/// values, a `message` that does not compile, arguments the plugin refuses.
pub(super) fn build_alarms(
    config: &Config,
    child_pid: Option<&Arc<AtomicI32>>,
    errors: &mut Vec<ConfigError>,
) -> Vec<PlannedAlarm> {
    let plugins = registry::plugins();
    (0..config.alarms.len())
        .filter_map(|i| build_alarm(config, i, &plugins, child_pid, errors))
        .collect()
}

/// Builds alarm `i` of `config`, or reports why not.
fn build_alarm(
    config: &Config,
    i: usize,
    plugins: &[Box<dyn Plugin>],
    child_pid: Option<&Arc<AtomicI32>>,
    errors: &mut Vec<ConfigError>,
) -> Option<PlannedAlarm> {
    let def = &config.alarms[i];
    // Against every earlier definition, built or not, so a broken first one still counts.
    if let Some(first) = config.alarms[..i].iter().find(|a| a.name == def.name) {
        errors.push(ConfigError::at(
            &def.origin,
            format!(
                "duplicate alarm name {:?}, first defined at {}; rename one of them",
                def.name, first.origin
            ),
        ));
        return None;
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
        return None;
    };
    if !check_options(def, plugin.as_ref(), errors) {
        return None;
    }
    let retry = retry_policy(&def.retry, plugin.as_ref());
    if let Err(message) = retry.check() {
        errors.push(ConfigError::at(
            def.retry.origin.as_ref().unwrap_or(&def.origin),
            message,
        ));
        return None;
    }
    // Compiled (and tried on a sample) here, so that a broken template
    // is a config error naming its key, not a failed delivery.
    let message = match &def.message {
        None => None,
        Some((source, at)) => match Template::compile("message", source) {
            Ok(template) => Some(Arc::new(template)),
            Err(e) => {
                errors.push(ConfigError::at(at, e));
                return None;
            }
        },
    };
    let ctx = BuildContext {
        alarm: def.name.clone(),
        timeout: def.timeout,
        child: child_pid.cloned(),
        options: def
            .options
            .iter()
            .map(|o| (o.key.clone(), o.value.clone()))
            .collect(),
        headers: def.headers.clone(),
        env: def.env.clone(),
    };
    match plugin.build(&ctx, &def.args) {
        Ok(action) => Some(PlannedAlarm {
            name: def.name.as_str().into(),
            action_text: format!("{}:{}", def.plugin, plugin.redact(&def.args)),
            action,
            queue_size: def
                .queue_size
                .unwrap_or_else(|| config.settings.queue_size()),
            concurrency: def
                .concurrency
                .or(config.settings.concurrency)
                .unwrap_or_else(|| plugin.concurrency())
                .min(MAX_CONCURRENCY),
            retry,
            on_failure: None,
            policy: Policies::default(),
            needs_caps: false,
            message,
            origin: def.origin.clone(),
        }),
        Err(message) => {
            // Plugins never repeat a secret; should one, it is hidden here as `check` hides it.
            let message = scrub(message, &def.args, &plugin.redact(&def.args));
            errors.push(ConfigError::at(&def.origin, message));
            None
        }
    }
}

/// `message` with every part of `args` that the plugin's redaction hides
/// (`redacted`, as `check` shows the action) written as `***`.
///
/// The hidden parts are found token by token (`;`-separated, as every
/// plugin's arguments are): a token redaction changed, less what it shares
/// with its redacted form at both ends (`auth_pass=s3cret` → `s3cret`,
/// `https://u:pw@h/` → `pw`). Parts shorter than 3 bytes are left alone:
/// replacing every `a` would garble the message and hide nothing.
pub(super) fn scrub(mut message: String, args: &str, redacted: &str) -> String {
    if args == redacted {
        return message;
    }
    let shown: Vec<&str> = redacted.split(';').collect();
    for (i, token) in args.split(';').enumerate() {
        let hidden = match shown.get(i) {
            Some(r) if *r == token => continue,
            Some(r) => {
                let prefix = common_prefix(token, r);
                let suffix = common_prefix_rev(&token[prefix..], &r[prefix.min(r.len())..]);
                &token[prefix..token.len() - suffix]
            }
            None => token,
        };
        if hidden.len() >= 3 {
            message = message.replace(hidden, "***");
        }
    }
    message
}

/// Bytes `a` and `b` share at their start, at a character boundary of `a`.
fn common_prefix(a: &str, b: &str) -> usize {
    let n = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
    (0..=n).rev().find(|&i| a.is_char_boundary(i)).unwrap_or(0)
}

/// Bytes `a` and `b` share at their end, at a character boundary of `a`.
fn common_prefix_rev(a: &str, b: &str) -> usize {
    let n = a
        .bytes()
        .rev()
        .zip(b.bytes().rev())
        .take_while(|(x, y)| x == y)
        .count();
    (0..=n)
        .rev()
        .find(|&i| a.is_char_boundary(a.len() - i))
        .unwrap_or(0)
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

/// Resolves each alarm's `on_failure` to the index of its fallback alarm.
///
/// Errors: an unknown alarm, the alarm itself, or a loop (A falls back to B
/// and B, maybe through others, to A: a notification would circle forever).
/// A fallback that is defined but broken is left unset, without an error of
/// its own (the alarm's error is reported already).
pub(super) fn link_fallbacks(
    config: &Config,
    alarms: &mut [PlannedAlarm],
    errors: &mut Vec<ConfigError>,
) {
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
    report_loops(config, alarms, errors);
}

/// Reports each loop through the fallbacks once.
///
/// Follows each chain: it ends within as many steps as there are alarms, or
/// comes back to where it started (reported from the loop's first alarm in
/// definition order, at its `on_failure`).
fn report_loops(config: &Config, alarms: &[PlannedAlarm], errors: &mut Vec<ConfigError>) {
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

#[cfg(test)]
mod scrub_tests {
    use super::scrub;

    #[test]
    fn what_redaction_hides_is_hidden_in_messages_too() {
        let args = "https://u:pw123@h/;auth_pass=s3cret;method=POST";
        let redacted = "https://u:***@h/;auth_pass=***;method=POST";
        assert_eq!(
            scrub("bad s3cret and pw123 via POST".into(), args, redacted),
            "bad *** and *** via POST"
        );
        assert_eq!(
            scrub("jid;hunter2;to".into(), "a@b;hunter2;c@d", "a@b;***;c@d"),
            "jid;***;to"
        );
        assert_eq!(scrub("same".into(), "x", "x"), "same");
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{ini, plan_errors, strings, toml};
    use super::*;
    use std::time::Duration;

    /// The alarms built and linked, and the errors of both steps.
    fn linked(config: &Config) -> (Vec<PlannedAlarm>, Vec<String>) {
        let mut errors = Vec::new();
        let mut alarms = build_alarms(config, None, &mut errors);
        link_fallbacks(config, &mut alarms, &mut errors);
        (alarms, strings(&errors))
    }

    fn names(alarms: &[PlannedAlarm]) -> Vec<&str> {
        alarms.iter().map(|a| &*a.name).collect()
    }

    #[test]
    fn alarms_are_built_in_definition_order() {
        let config = ini("[uwsgi]\nalarm = b log:\nalarm = a log:hello\n");
        let (alarms, errors) = linked(&config);
        assert_eq!(errors, Vec::<String>::new());
        assert_eq!(names(&alarms), ["b", "a"]);
        assert_eq!(alarms[1].action_text, "log:hello");
        assert_eq!(alarms[0].queue_size, config.settings.queue_size());
        assert_eq!(alarms[0].origin.to_string(), "a.ini:2: alarm");
        assert!(
            alarms
                .iter()
                .all(|a| a.on_failure.is_none() && !a.needs_caps)
        );
    }

    #[test]
    fn a_duplicate_alarm_name_points_at_the_first() {
        let config =
            ini("[uwsgi]\nalarm = mailme log:one\nlog-alarm = mailme X\nalarm = mailme log:two\n");
        let (alarms, errors) = linked(&config);
        assert_eq!(
            errors,
            [
                "a.ini:4: alarm: duplicate alarm name \"mailme\", first defined at a.ini:2: alarm; rename one of them"
            ]
        );
        assert_eq!(names(&alarms), ["mailme"]);
        assert_eq!(alarms[0].action_text, "log:one", "the first one stays");
    }

    #[test]
    fn a_duplicate_of_a_broken_alarm_is_reported_too() {
        let config = ini("[uwsgi]\nalarm = x nope:foo\nalarm = x log:\nlog-alarm = x X\n");
        let (alarms, errors) = linked(&config);
        assert_eq!(errors.len(), 2, "{errors:#?}");
        assert!(errors[0].starts_with("a.ini:2: alarm: unknown plugin \"nope\""));
        assert_eq!(
            errors[1],
            "a.ini:3: alarm: duplicate alarm name \"x\", first defined at a.ini:2: alarm; rename one of them"
        );
        assert!(alarms.is_empty());
    }

    #[test]
    fn an_unknown_plugin_lists_the_plugins_of_this_build() {
        let config = ini("[uwsgi]\nalarm = page pager:+15551234\nlog-alarm = page X\n");
        let (alarms, errors) = linked(&config);
        let have: Vec<&str> = registry::plugins().iter().map(|p| p.name()).collect();
        assert!(have.contains(&"curl"), "{have:?}");
        assert_eq!(
            errors,
            [format!(
                "a.ini:2: alarm: unknown plugin \"pager\" (this build has: {})",
                have.join(", ")
            )]
        );
        assert!(alarms.is_empty());
    }

    #[test]
    fn an_unknown_plugin_uwsgi_has_says_what_to_use() {
        let config = ini("[uwsgi]\nalarm = m mule:1\nlog-alarm = m X\n");
        let (_, errors) = linked(&config);
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].ends_with("); mules exist only inside uWSGI; use cmd: or signal: instead"),
            "{}",
            errors[0]
        );
    }

    #[test]
    fn a_key_the_plugin_does_not_take_is_named_with_what_it_takes() {
        let config = toml(
            "[alarm.a]\naction = \"log:\"\nqueue_sise = 3\n\
             [alarm.b]\naction = \"log:\"\nzzz = 1\nheaders = { X = \"y\" }\n\
             [[rule]]\nregex = \"x\"\nalarms = [\"a\", \"b\"]\n",
        );
        let (alarms, errors) = linked(&config);
        let engine = crate::config::toml::alarm_engine_keys().join(", ");
        assert_eq!(
            errors,
            [
                "t.toml:3: alarm.a.queue_sise: unknown key `queue_sise`; did you mean `queue_size`?"
                    .to_owned(),
                format!(
                    "t.toml:6: alarm.b.zzz: unknown key `zzz`: every alarm takes {engine}; the log plugin takes no other key"
                ),
                "t.toml:5: alarm.b.action: `headers` is not for this alarm: the log plugin takes no other key"
                    .to_owned(),
            ]
        );
        assert!(alarms.is_empty());
    }

    #[test]
    fn retry_takes_the_plugin_default_for_what_it_leaves_out() {
        let log = registry::plugins()
            .into_iter()
            .find(|p| p.name() == "log")
            .expect("log plugin");
        assert_eq!(
            retry_policy(&RetryDef::default(), log.as_ref()),
            RetryPolicy::LOCAL
        );
        let set = RetryDef {
            attempts: Some(4),
            delay: Some(RetryPolicy::LOCAL.max_delay + Duration::from_secs(1)),
            ..RetryDef::default()
        };
        let policy = retry_policy(&set, log.as_ref());
        assert_eq!(policy.attempts, 4);
        assert_eq!(policy.deadline, RetryPolicy::LOCAL.deadline);
        assert_eq!(
            policy.max_delay,
            RetryPolicy::LOCAL.max_delay + Duration::from_secs(1),
            "a delay above the default cap raises the cap"
        );
    }

    #[test]
    fn a_message_that_does_not_compile_is_an_error_at_its_key() {
        let config = toml(
            "[alarm.a]\naction = \"log:\"\nmessage = \"{{ line \"\n\
             [[rule]]\nregex = \"x\"\nalarm = \"a\"\n",
        );
        let (alarms, errors) = linked(&config);
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert!(
            errors[0].starts_with("t.toml:3: alarm.a.message: "),
            "{}",
            errors[0]
        );
        assert!(alarms.is_empty());
    }

    /// `[alarm.NAME]` tables with `on_failure` (when not empty), a rule for all.
    fn fallbacks(pairs: &[(&str, &str)]) -> Config {
        let mut text = String::new();
        for (name, to) in pairs {
            text.push_str(&format!("[alarm.{name}]\naction = \"log:\"\n"));
            if !to.is_empty() {
                text.push_str(&format!("on_failure = \"{to}\"\n"));
            }
        }
        let all: Vec<String> = pairs.iter().map(|(n, _)| format!("{n:?}")).collect();
        text.push_str(&format!(
            "[[rule]]\nregex = \"x\"\nalarms = [{}]\n",
            all.join(", ")
        ));
        toml(&text)
    }

    #[test]
    fn on_failure_links_to_the_fallbacks_index() {
        let (alarms, errors) = linked(&fallbacks(&[("a", "b"), ("b", "c"), ("c", "")]));
        assert_eq!(errors, Vec::<String>::new());
        let to: Vec<Option<usize>> = alarms.iter().map(|a| a.on_failure).collect();
        assert_eq!(to, [Some(1), Some(2), None]);
    }

    #[test]
    fn an_on_failure_loop_is_reported_once_from_its_first_alarm() {
        let (_, errors) = linked(&fallbacks(&[("a", "b"), ("b", "a")]));
        assert_eq!(
            errors,
            [
                "t.toml:3: alarm.a.on_failure: on_failure alarms form a loop (a -> b -> a); end the chain at an alarm without on_failure"
            ]
        );
    }

    #[test]
    fn a_loop_behind_a_chain_is_reported_from_its_own_members() {
        // x -> a -> b -> c -> a: the loop is a, b, c; x only leads into it.
        let (_, errors) = linked(&fallbacks(&[
            ("x", "a"),
            ("a", "b"),
            ("b", "c"),
            ("c", "a"),
        ]));
        assert_eq!(
            errors,
            [
                "t.toml:6: alarm.a.on_failure: on_failure alarms form a loop (a -> b -> c -> a); end the chain at an alarm without on_failure"
            ]
        );
    }

    #[test]
    fn an_alarm_cannot_be_its_own_on_failure() {
        let (alarms, errors) = linked(&fallbacks(&[("a", "a")]));
        assert_eq!(
            errors,
            [
                "t.toml:3: alarm.a.on_failure: alarm \"a\" cannot be its own on_failure alarm; name another alarm"
            ]
        );
        assert_eq!(alarms[0].on_failure, None);
    }

    #[test]
    fn on_failure_naming_an_unknown_alarm_is_an_error() {
        let (_, errors) = linked(&fallbacks(&[("a", "nope")]));
        assert_eq!(
            errors,
            [
                "t.toml:3: alarm.a.on_failure: on_failure names unknown alarm \"nope\"; define it or fix the name"
            ]
        );
    }

    #[test]
    fn on_failure_naming_a_broken_alarm_gets_no_second_error() {
        let config = toml(
            "[alarm.a]\naction = \"log:\"\non_failure = \"b\"\n\
             [alarm.b]\naction = \"nope:\"\n\
             [[rule]]\nregex = \"x\"\nalarm = \"a\"\n",
        );
        let (alarms, errors) = linked(&config);
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert!(errors[0].starts_with("t.toml:5: alarm.b.action: unknown plugin \"nope\""));
        assert_eq!(alarms[0].on_failure, None);
        // Nor from the whole plan.
        assert_eq!(plan_errors(&config), errors);
    }
}
