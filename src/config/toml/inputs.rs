//! The inputs of a TOML config: `[[input]]` tables, each read by the input
//! kind its keys name ([`crate::input::component::KINDS`]); `[run]`
//! ([`crate::input::child::config`]); `[[alarm_fd]]`
//! ([`crate::input::fd::config`]); and the `stall_after`/`on_stall` every
//! input, `[run]` and the top level take.

use super::super::policy::{StallDef, StallOn};
use super::super::{Config, ConfigError, Origin};
use crate::component::de::{OneOrMany, Period};
use crate::component::toml_doc::Reader;
use crate::input::child::config::RunDef;
use crate::input::component::{InputConfig, KINDS as INPUT_KINDS, Kind as InputKind};
use crate::input::fd::config::AlarmFdDef;
use toml::Spanned;
use toml::de::DeValue;

/// An input's `stall_after` and `on_stall`, as read, with where.
pub(super) type Stall = (Option<Period>, Option<OneOrMany>, Origin);

/// An `[[input]]` table as read: its config and its stall watch.
pub(super) type ReadInput = (Box<dyn InputConfig>, Stall);

/// Takes `stall_after` and `on_stall` out of a table (every input takes
/// them; its kind's own reader does not).
pub(super) fn take_stall(
    r: &mut Reader<'_>,
    path: &str,
    value: &mut Spanned<DeValue<'_>>,
) -> Stall {
    let at = r.origin(value.span().start, path.to_owned());
    let DeValue::Table(t) = value.get_mut() else {
        return (None, None, at);
    };
    let after = t
        .remove("stall_after")
        .and_then(|v| r.value::<Period>(&format!("{path}.stall_after"), v));
    let on = t
        .remove("on_stall")
        .and_then(|v| r.value::<OneOrMany>(&format!("{path}.on_stall"), v));
    (after, on, at)
}

/// `a`, `a and b`, `a, b and c`.
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// Reads each `[[input]]` table through the input kind its keys name
/// ([`crate::input::component::KINDS`]).
pub(super) fn read_inputs(
    r: &mut Reader<'_>,
    value: Spanned<DeValue<'_>>,
    errors: &mut Vec<ConfigError>,
) -> Vec<ReadInput> {
    if !matches!(value.get_ref(), DeValue::Array(_)) {
        // Not a list: let serde say what it is.
        let _: Option<Vec<toml::Value>> = r.value("input", value);
        return Vec::new();
    }
    let DeValue::Array(items) = value.into_inner() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, mut item) in items.into_iter().enumerate() {
        let path = format!("input[{}]", i + 1);
        if !matches!(item.get_ref(), DeValue::Table(_)) {
            let _: Option<toml::Table> = r.value(&path, item);
            continue;
        }
        let stall = take_stall(r, &path, &mut item);
        let at = stall.2.clone();
        let DeValue::Table(t) = item.get_mut() else {
            continue;
        };
        let named: Vec<&'static InputKind> = INPUT_KINDS
            .iter()
            .copied()
            .filter(|k| t.get(k.key).is_some())
            .collect();
        let kind = match named.as_slice() {
            [kind] => *kind,
            [] => {
                let keys: Vec<String> = INPUT_KINDS
                    .iter()
                    .map(|k| format!("{} = \"PATH\"", k.key))
                    .collect();
                let fix = keys.join(" or ");
                errors.push(ConfigError::new(
                    &at,
                    "names no input",
                    format!("write {fix}"),
                ));
                continue;
            }
            many => {
                let keys: Vec<String> = many.iter().map(|k| format!("`{}`", k.key)).collect();
                errors.push(ConfigError::new(
                    &at,
                    format!("has both {}", and_list(&keys)),
                    "one [[input]] table per input",
                ));
                continue;
            }
        };
        // A key of another kind is named as such, not as a mere unknown key.
        let foreign: Vec<String> = t
            .iter()
            .map(|(k, _)| k.get_ref().to_string())
            .filter(|k| !kind.table.names().contains(&k.as_str()))
            .filter(|k| {
                INPUT_KINDS
                    .iter()
                    .any(|o| o.table.names().contains(&k.as_str()))
            })
            .collect();
        if !foreign.is_empty() {
            let owner = INPUT_KINDS
                .iter()
                .find(|o| o.table.names().contains(&foreign[0].as_str()))
                .map_or("other", |o| o.key);
            let keys: Vec<String> = foreign.iter().map(|k| format!("`{k}`")).collect();
            let verb = if keys.len() == 1 { "belongs" } else { "belong" };
            errors.push(ConfigError::at(
                &at,
                format!(
                    "{} {verb} to {owner} inputs, not to `{}`",
                    and_list(&keys),
                    kind.key
                ),
            ));
            continue;
        }
        if !r.known_keys(&path, t, &kind.table, false) {
            continue;
        }
        if let Some(input) = (kind.from_toml)(r, &path, item, errors) {
            out.push((input, stall));
        }
    }
    out
}

/// Reads the `[run]` table (see [`crate::input::child::config`]).
pub(super) fn read_run(
    r: &mut Reader<'_>,
    mut value: Spanned<DeValue<'_>>,
    errors: &mut Vec<ConfigError>,
) -> Option<(RunDef, Stall)> {
    let stall = take_stall(r, "run", &mut value);
    let run = crate::input::child::config::from_toml(r, value, errors)?;
    Some((run, stall))
}

/// Reads each `[[alarm_fd]]` table (see [`crate::input::fd::config`]).
pub(super) fn read_alarm_fds(
    r: &mut Reader<'_>,
    value: Spanned<DeValue<'_>>,
    errors: &mut Vec<ConfigError>,
) -> Vec<AlarmFdDef> {
    if !matches!(value.get_ref(), DeValue::Array(_)) {
        let _: Option<Vec<toml::Value>> = r.value("alarm_fd", value);
        return Vec::new();
    }
    let DeValue::Array(items) = value.into_inner() else {
        return Vec::new();
    };
    items
        .into_iter()
        .enumerate()
        .filter_map(|(i, item)| {
            crate::input::fd::config::from_toml(r, &format!("alarm_fd[{}]", i + 1), item, errors)
        })
        .collect()
}

/// `stall_after` and `on_stall` of an input, `[run]` or the top level: both or neither.
fn stall_def(
    after: Option<Period>,
    on: Option<OneOrMany>,
    at: &Origin,
) -> Result<Option<StallDef>, String> {
    match (after, on.map(OneOrMany::into_vec)) {
        (None, None) => Ok(None),
        (Some(after), Some(alarms)) if !after.0.is_zero() && !alarms.is_empty() => {
            Ok(Some(StallDef {
                after: after.0,
                alarms,
                origin: at.clone(),
            }))
        }
        (Some(_), None) => Err("has `stall_after` but no `on_stall`; name the alarm to fire, e.g. on_stall = \"pager\"".into()),
        (None, Some(_)) => Err("has `on_stall` but no `stall_after`; give the silence allowed, e.g. stall_after = \"5m\"".into()),
        _ => Err("`stall_after` must be above zero and `on_stall` must name an alarm".into()),
    }
}

/// Adds a stall watch on `on`, when `stall_after` and `on_stall` are set.
pub(super) fn stall(
    after: Option<Period>,
    on_stall: Option<OneOrMany>,
    on: StallOn,
    at: &Origin,
    config: &mut Config,
    errors: &mut Vec<ConfigError>,
) {
    match stall_def(after, on_stall, at) {
        Ok(Some(stall)) => config.stalls.push((on, stall)),
        Ok(None) => {}
        Err(message) => errors.push(ConfigError::at(at, message)),
    }
}

/// Adds the inputs and `[run]` read, with their stall watches.
pub(super) fn load(
    input: Vec<ReadInput>,
    run: Option<(RunDef, Stall)>,
    config: &mut Config,
    errors: &mut Vec<ConfigError>,
) {
    for (input, (after, on_stall, at)) in input {
        let on = StallOn::Input(config.inputs.len());
        stall(after, on_stall, on, &at, config, errors);
        config.inputs.push(input);
    }
    if let Some((run, (after, on_stall, at))) = run {
        stall(after, on_stall, StallOn::Child, &at, config, errors);
        config.run = run;
    }
}
