//! Each alarm's policies (threshold, cooldown, digest, escalation), built and
//! linked to the plan's alarms.
//!
//! The policy kinds check and build themselves ([`crate::policy::component`]);
//! what only the plan knows is which alarms exist, by index: an escalation
//! names its pager alarm, which must be built, and not the alarm itself. This
//! step hands them that ([`BuildContext`]) and keeps their chain order.

use super::PlannedAlarm;
use crate::config::{Config, ConfigError};
use crate::policy::chain::Policies;
use crate::policy::component::{BuildContext, DEFAULT_MAX_KEYS, KINDS};
use std::sync::Arc;

/// Builds each alarm's policies in chain order ([`KINDS`], whatever the
/// order written), with its key; and finds whether the alarm needs capture
/// groups (any mention of `caps` in its templates).
///
/// Errors: those of the key template and of each policy (an escalation to
/// an unknown alarm or to the alarm itself; one to an alarm that is defined
/// but broken has no error of its own). An alarm with any error keeps no
/// policy.
pub(super) fn link_policies(
    config: &Config,
    alarms: &mut [PlannedAlarm],
    errors: &mut Vec<ConfigError>,
) {
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

#[cfg(test)]
mod tests {
    use super::super::alarms::build_alarms;
    use super::super::testing::{plan_errors, strings, toml};
    use super::*;

    /// The alarms built with their policies, and the errors of this step.
    fn linked(config: &Config) -> (Vec<PlannedAlarm>, Vec<String>) {
        let mut errors = Vec::new();
        let mut alarms = build_alarms(config, None, &mut errors);
        assert_eq!(strings(&errors), Vec::<String>::new());
        link_policies(config, &mut alarms, &mut errors);
        (alarms, strings(&errors))
    }

    /// Each policy's type, as its debug form starts.
    fn kinds(alarm: &PlannedAlarm) -> Vec<String> {
        alarm
            .policy
            .list
            .iter()
            .map(|p| {
                let debug = format!("{p:?}");
                debug
                    .split([' ', '{', '('])
                    .next()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect()
    }

    #[test]
    fn policies_are_built_in_chain_order_whatever_the_order_written() {
        let config = toml(
            r#"[alarm.a]
action = "log:"
cooldown = { max = 1, period = "1h" }
threshold = { count = 5, window = "60s" }
escalate = { limit = 100, window = "5m", alarm = "pager" }
[alarm.pager]
action = "log:"
[[rule]]
regex = "x"
alarm = "a"
"#,
        );
        let (alarms, errors) = linked(&config);
        assert_eq!(errors, Vec::<String>::new());
        assert_eq!(
            kinds(&alarms[0]),
            ["EscalatePolicy", "ThresholdPolicy", "CooldownPolicy"]
        );
        assert!(alarms[1].policy.list.is_empty());
        assert!(alarms[0].policy.key.is_none());
    }

    #[test]
    fn an_escalation_to_the_alarm_itself_is_an_error() {
        let config = toml(
            r#"[alarm.b]
action = "log:"
threshold = { count = 5, window = "60s" }
escalate = { limit = 1, window = "1m", alarm = "b" }
[[rule]]
regex = "x"
alarm = "b"
"#,
        );
        let (alarms, errors) = linked(&config);
        assert_eq!(
            errors,
            [
                "t.toml:4: alarm.b.escalate: alarm \"b\" cannot escalate to itself; name a pager alarm"
            ]
        );
        assert!(
            alarms[0].policy.list.is_empty(),
            "an alarm with a broken policy keeps none"
        );
    }

    #[test]
    fn an_escalation_to_an_unknown_alarm_is_an_error() {
        let config = toml(
            r#"[alarm.a]
action = "log:"
escalate = { limit = 1, window = "1m", alarm = "nope" }
[[rule]]
regex = "x"
alarm = "a"
"#,
        );
        let (_, errors) = linked(&config);
        assert_eq!(
            errors,
            [
                "t.toml:3: alarm.a.escalate: escalate names unknown alarm \"nope\"; define it or fix the name"
            ]
        );
    }

    #[test]
    fn an_escalation_to_a_broken_alarm_gets_no_second_error() {
        let config = toml(
            r#"[alarm.a]
action = "log:"
escalate = { limit = 1, window = "1m", alarm = "pager" }
[alarm.pager]
action = "nope:"
[[rule]]
regex = "x"
alarm = "a"
"#,
        );
        let errors = plan_errors(&config);
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert!(
            errors[0].starts_with("t.toml:5: alarm.pager.action: unknown plugin \"nope\""),
            "{}",
            errors[0]
        );
    }

    #[test]
    fn an_alarm_whose_templates_mention_caps_needs_them() {
        let config = toml(
            r#"[alarm.keyed]
action = "log:"
key = "{{ caps.ip }}"
[alarm.looped]
action = "log:"
message = "{% for k in caps %}{{ k }}{% endfor %}"
[alarm.plain]
action = "log:"
message = "{{ line }}"
[[rule]]
regex = '(?P<ip>\S+)'
alarms = ["keyed", "looped", "plain"]
"#,
        );
        let (alarms, errors) = linked(&config);
        assert_eq!(errors, Vec::<String>::new());
        let needs: Vec<bool> = alarms.iter().map(|a| a.needs_caps).collect();
        assert_eq!(needs, [true, true, false]);
        assert!(alarms[0].policy.key.is_some());
    }
}
