//! The variables a template sees, built from a [`Notification`] (the table in
//! the crate docs).

use logalarm_plugin_api::{Captures, Notification, Syslog};
use minijinja::value::{Enumerator, Object, ObjectRepr};
use minijinja::{Value, context as ctx};
use std::sync::Arc;
use std::time::SystemTime;

/// The template variables of `n` (see the crate docs).
pub fn context(n: &Notification) -> Value {
    let syslog = n.syslog.as_deref();
    let field = |get: fn(&Syslog) -> Option<&str>| syslog.and_then(get).map(str::to_owned);
    let line = String::from_utf8_lossy(&n.body()).into_owned();
    let time = rfc3339(n.time);
    let source = n.source.to_string();
    let caps = Value::from_object(Caps(n.caps.clone()));
    let key = n.key.as_deref();
    let (count, first_seen, last_seen, period, sources, events, ungrouped) = match &n.aggregate {
        Some(a) => (
            a.count,
            rfc3339(a.first_seen),
            rfc3339(a.last_seen),
            Some(humantime::format_duration(a.period).to_string()),
            counts(&a.sources),
            a.groups
                .iter()
                .map(|g| {
                    ctx! {
                        key => &g.key,
                        count => g.count,
                        first_seen => rfc3339(g.first_seen),
                        last_seen => rfc3339(g.last_seen),
                        sources => counts(&g.sources),
                        example => String::from_utf8_lossy(&g.example).into_owned(),
                    }
                })
                .collect::<Vec<_>>(),
            a.ungrouped,
        ),
        None => {
            // One event reads like an aggregate of itself, so that one
            // template can word single events and digests alike.
            let count = n.suppressed.saturating_add(1);
            let sources = vec![ctx! { name => &source, count }];
            let event = ctx! {
                key => key.unwrap_or(&line),
                count,
                first_seen => &time,
                last_seen => &time,
                sources => sources.clone(),
                example => &line,
            };
            (
                count,
                time.clone(),
                time.clone(),
                None,
                sources,
                vec![event],
                0,
            )
        }
    };
    ctx! {
        alarm => &*n.alarm,
        kind => n.kind.to_string(),
        line,
        rule => &*n.rule,
        caps,
        key,
        source,
        time,
        id => n.id.to_string(),
        suppressed => n.suppressed,
        truncated => n.truncated_from,
        host => field(|s| s.host.as_deref()),
        app => field(|s| s.app.as_deref()),
        pid => field(|s| s.pid.as_deref()),
        msgid => field(|s| s.msgid.as_deref()),
        severity => syslog.and_then(Syslog::severity_name),
        facility => syslog.and_then(Syslog::facility_name),
        count,
        first_seen,
        last_seen,
        period,
        sources,
        events,
        ungrouped,
    }
}

/// RFC 3339 in UTC with milliseconds, as `time` is written.
fn rfc3339(t: SystemTime) -> String {
    logalarm_plugin_api::logline::rfc3339_millis(t)
}

/// Per-source counts as a list of `{name, count}`.
fn counts(list: &[(String, u64)]) -> Vec<Value> {
    list.iter()
        .map(|(name, count)| ctx! { name, count })
        .collect()
}

/// `caps`: the capture groups, by name (`caps.ip`) or number (`caps[1]`).
///
/// Any name or number the line's captures lack is none rather than
/// undefined (which strict templates reject): the template is shared by
/// every rule of the alarm, and rules differ in their groups.
#[derive(Debug)]
struct Caps(Option<Arc<Captures>>);

impl Object for Caps {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let caps = self.0.as_deref();
        let group = match key.as_usize() {
            Some(i) => caps.and_then(|c| c.groups.get(i)?.as_deref()),
            None => caps.and_then(|c| c.name(key.as_str()?)),
        };
        Some(Value::from(group))
    }

    /// The named groups (what `caps | items` lists).
    fn enumerate(self: &Arc<Self>) -> Enumerator {
        let names: Vec<Value> = self
            .0
            .iter()
            .flat_map(|c| c.names.iter().map(|(name, _)| Value::from(&**name)))
            .collect();
        Enumerator::Values(names)
    }
}
