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
