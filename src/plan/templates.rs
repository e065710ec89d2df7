//! The capture groups the alarms' templates use (`caps.ip` in a `key`, a
//! `message`, a plugin's `body`), checked against the rules that fire them.
//!
//! A template renders a group a line's match does not have as nothing, so a
//! misspelt group would key every event under the empty key, or leave a
//! message blank, silently. Only the plan knows which rules fire which alarm,
//! so this is checked here, after the rules are planned.

use super::PlannedRule;
use crate::config::{Config, ConfigError};
use regex_automata::PatternID;
use std::sync::Arc;

/// The capture groups a template refers to: `caps.NAME`, `caps['NAME']`,
/// `caps["NAME"]`, `caps[N]`; each as written (a number as its digits), in
/// order, repeats kept.
pub(super) fn caps_refs(template: &str) -> Vec<String> {
    static REFS: std::sync::LazyLock<Option<regex_automata::meta::Regex>> =
        std::sync::LazyLock::new(|| {
            regex_automata::meta::Regex::new(
                r#"(?-u:\b)caps\s*(?:\.\s*([A-Za-z_][A-Za-z0-9_]*)|\[\s*(?:'([^']*)'|"([^"]*)"|([0-9]+))\s*\])"#,
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
/// is a group of a rule firing the alarm (`known` holds the planned alarms'
/// names, by index, as the rules' alarms refer to them).
///
/// Errors, one per group not found, at the template's key: what groups the
/// rules have, and the fix. Alarms that get other alarms' notifications
/// (`on_failure`) or no rule's are not checked, nor alarms not planned.
pub(super) fn check_caps(
    config: &Config,
    known: &[Arc<str>],
    rules: &[PlannedRule],
    errors: &mut Vec<ConfigError>,
) {
    for def in &config.alarms {
        let Some(me) = known.iter().position(|a| **a == *def.name) else {
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
                groups = groups.max(info.group_len(PatternID::ZERO));
                names.extend(
                    info.pattern_names(PatternID::ZERO)
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

#[cfg(test)]
mod tests {
    use super::super::rules::plan_rules;
    use super::super::testing::{plan_errors, strings, toml};
    use super::*;

    #[test]
    fn caps_refs_finds_each_form() {
        // Another variable whose name ends in `caps` is not the groups.
        assert_eq!(
            caps_refs("{{ mycaps.x }}{{ my_caps['y'] }}"),
            Vec::<String>::new()
        );
        assert_eq!(caps_refs("{{ caps.ip }}"), ["ip"]);
        assert_eq!(caps_refs("{{ caps['x'] }}"), ["x"]);
        assert_eq!(caps_refs("{{ caps[\"user name\"] }}"), ["user name"]);
        assert_eq!(caps_refs("{{ caps[2] }}"), ["2"]);
        assert_eq!(caps_refs("{{ caps . ip }}{{ caps[ 'a' ] }}"), ["ip", "a"]);
        assert_eq!(
            caps_refs("{{ caps.ip }} {{ caps[0] }} {{ caps.ip | upper }}"),
            ["ip", "0", "ip"]
        );
    }

    #[test]
    fn caps_refs_finds_nothing_else() {
        assert_eq!(caps_refs("{{ line }} {{ count }}"), Vec::<String>::new());
        assert_eq!(
            caps_refs("{% for k in caps %}{{ k }}{% endfor %}"),
            Vec::<String>::new()
        );
        assert_eq!(
            caps_refs("{{ caps[x] }} {{ caps.1 }}"),
            Vec::<String>::new()
        );
    }

    /// The errors of checking `config`'s alarms against its rules (the
    /// alarms all planned, in definition order).
    fn checked(config: &Config) -> Vec<String> {
        let known: Vec<Arc<str>> = config
            .alarms
            .iter()
            .map(|a| a.name.as_str().into())
            .collect();
        let mut errors = Vec::new();
        let (rules, _) = plan_rules(config, &known, &mut errors);
        assert_eq!(strings(&errors), Vec::<String>::new());
        check_caps(config, &known, &rules, &mut errors);
        strings(&errors)
    }

    #[test]
    fn a_group_no_rule_firing_the_alarm_has_is_an_error() {
        let config = toml(
            r#"[alarm.ssh]
action = "log:"
key = "{{ caps.iip }}"
threshold = { count = 5, window = "60s" }
message = "{{ caps.ip }} {{ caps[3] }}"
[[rule]]
regex = 'from (?P<ip>\S+) port (\d+)'
alarm = "ssh"
"#,
        );
        let errors = [
            "t.toml:3: alarm.ssh.key: `caps` group \"iip\" is in no rule firing alarm \"ssh\" (theirs: ip; numbered up to 2); fix the name or add `(?P<iip>…)` to the rule",
            "t.toml:5: alarm.ssh.message: `caps` group \"3\" is in no rule firing alarm \"ssh\" (theirs: ip; numbered up to 2); fix the number (group 0 is the whole match)",
        ];
        assert_eq!(checked(&config), errors);
        assert_eq!(plan_errors(&config), errors);
    }

    #[test]
    fn the_error_says_what_groups_the_rules_have() {
        let config = toml(
            r#"[alarm.none]
action = "log:"
message = "{{ caps.ip }}"
[alarm.numbered]
action = "log:"
message = "{{ caps['ip'] }}"
[[rule]]
regex = 'from \S+'
alarm = "none"
[[rule]]
regex = '(\S+) (\d+)'
alarm = "numbered"
"#,
        );
        assert_eq!(
            checked(&config),
            [
                "t.toml:3: alarm.none.message: `caps` group \"ip\" is in no rule firing alarm \"none\" (they have no capture groups); fix the name or add `(?P<ip>…)` to the rule",
                "t.toml:6: alarm.numbered.message: `caps` group \"ip\" is in no rule firing alarm \"numbered\" (they have groups 1 to 2 and no named one); fix the name or add `(?P<ip>…)` to the rule",
            ]
        );
    }

    #[test]
    fn a_group_of_any_rule_firing_the_alarm_will_do() {
        let config = toml(
            r#"[alarm.a]
action = "log:"
message = "{{ caps.user }} {{ caps['ip'] }} {{ caps[2] }} {{ caps[0] }}"
[[rule]]
regex = '(?P<user>\w+) (\w+)'
alarm = "a"
[[rule]]
regex = 'from (?P<ip>\S+)'
alarm = "a"
"#,
        );
        assert_eq!(checked(&config), Vec::<String>::new());
    }

    #[test]
    fn fallbacks_and_alarms_no_rule_fires_are_not_checked() {
        let config = toml(
            r#"[alarm.a]
action = "log:"
on_failure = "backup"
[alarm.backup]
action = "log:"
message = "{{ caps.ip }}"
[alarm.idle]
action = "log:"
message = "{{ caps.ip }}"
[[rule]]
regex = 'x'
alarms = ["a", "backup"]
"#,
        );
        assert_eq!(checked(&config), Vec::<String>::new());
    }
}
