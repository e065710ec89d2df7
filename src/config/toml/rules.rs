//! The rules of a TOML config: `[[rule]]` tables (a rule's `multiline`
//! goes to [`crate::record::config`]), and `[[expect]]`, the lines whose
//! absence is an alarm.

use super::super::policy::ExpectDef;
use super::super::{Config, ConfigError, RuleDef};
use crate::component::de::{OneOrMany, Period};
use crate::component::toml_doc::{Reader, Schema};
use serde::Deserialize;
use toml::Spanned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Expect {
    regex: String,
    within: Period,
    alarm: Option<OneOrMany>,
    alarms: Option<OneOrMany>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Rule {
    regex: Option<Spanned<String>>,
    alarms: Option<Vec<String>>,
    alarm: Option<String>,
    #[serde(default)]
    negate: bool,
    resolve: Option<Spanned<String>>,
    multiline: Option<Spanned<toml::Value>>,
}

pub(super) static RULE: Schema = Schema {
    what: "a [[rule]]",
    keys: &[
        ("regex", None),
        ("alarms", None),
        ("alarm", None),
        ("negate", None),
        ("resolve", None),
        ("multiline", Some(&crate::record::config::TABLE)),
    ],
};

pub(super) static EXPECT: Schema = Schema {
    what: "an [[expect]]",
    keys: &[
        ("regex", None),
        ("within", None),
        ("alarm", None),
        ("alarms", None),
    ],
};

/// Adds the `[[expect]]` tables read (each with its 1-based place).
pub(super) fn load_expects(
    reader: &Reader<'_>,
    expect: Vec<(usize, Spanned<Expect>)>,
    config: &mut Config,
    errors: &mut Vec<ConfigError>,
) {
    for (n, expect) in expect {
        let at = reader.origin(expect.span().start, format!("expect[{n}]"));
        let expect = expect.into_inner();
        let alarms = match (expect.alarm, expect.alarms) {
            (Some(a), None) | (None, Some(a)) => a.into_vec(),
            _ => Vec::new(),
        };
        if alarms.is_empty() {
            errors.push(ConfigError::at(
                &at,
                "names no alarm (or both `alarm` and `alarms`); write alarm = \"NAME\"",
            ));
            continue;
        }
        if expect.within.0.is_zero() || expect.regex.is_empty() {
            errors.push(ConfigError::at(
                &at,
                "needs a regex and a period above zero, e.g. regex = \"heartbeat ok\", within = \"5m\"",
            ));
            continue;
        }
        config.expects.push(ExpectDef {
            regex: expect.regex,
            within: expect.within.0,
            alarms,
            origin: at,
        });
    }
}

/// Adds the `[[rule]]` tables read (each with its 1-based place).
pub(super) fn load_rules(
    reader: &Reader<'_>,
    rule: Vec<(usize, Spanned<Rule>)>,
    config: &mut Config,
    errors: &mut Vec<ConfigError>,
) {
    for (n, rule) in rule {
        let start = rule.span().start;
        let rule = rule.into_inner();
        let Some(regex) = rule.regex.filter(|r| !r.get_ref().is_empty()) else {
            errors.push(ConfigError::at(
                &reader.origin(start, format!("rule[{n}]")),
                "rule without regex; add regex = \"…\" to this [[rule]]",
            ));
            continue;
        };
        let alarms = match (rule.alarms, rule.alarm) {
            (Some(list), None) if !list.is_empty() => list,
            (None, Some(one)) => vec![one],
            (Some(_), Some(_)) => {
                errors.push(ConfigError::at(
                    &reader.origin(start, format!("rule[{n}]")),
                    "has both `alarm` and `alarms`; keep one",
                ));
                continue;
            }
            _ => {
                errors.push(ConfigError::at(
                    &reader.origin(start, format!("rule[{n}]")),
                    "names no alarm; add alarms = [\"NAME\"]",
                ));
                continue;
            }
        };
        let multiline = match rule.multiline {
            None => None,
            Some(value) => {
                let at = reader.origin(value.span().start, format!("rule[{n}].multiline"));
                match crate::record::config::from_toml(value.into_inner(), at.clone()) {
                    Ok(def) => Some(def),
                    Err(message) => {
                        errors.push(ConfigError::at(&at, message));
                        continue;
                    }
                }
            }
        };
        let at = reader.origin(regex.span().start, format!("rule[{n}].regex"));
        let resolve = rule.resolve.map(|r| {
            let at = reader.origin(r.span().start, format!("rule[{n}].resolve"));
            (r.into_inner(), at)
        });
        if rule.negate && resolve.is_some() {
            errors.push(ConfigError::at(
                &at,
                "a not-log-alarm rule fires nothing, so it has nothing to resolve; remove `resolve` or `negate`",
            ));
        }
        config.rules.push(RuleDef {
            regex: regex.into_inner(),
            alarms,
            negate: rule.negate,
            resolve,
            multiline,
            origin: at,
        });
    }
}
