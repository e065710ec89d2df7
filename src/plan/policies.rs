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
