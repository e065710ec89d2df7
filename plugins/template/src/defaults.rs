//! How a notification the policy stage made is worded when its alarm has no
//! `message` template: one default template per [`Kind`] beyond `alarm`.
//!
//! Each reads well both as a mail body and on a `cmd` command's stdin: plain
//! text, no markup, one idea per line, no trailing newline (the `cmd` action
//! adds one, as for a log line).

use crate::Template;
use logalarm_plugin_api::Kind;
use std::sync::OnceLock;

/// A digest, as failnozzle words its summary mail: a headline with the counts
/// and sources, then per unique message (most frequent first) its count,
/// first and last seen, per-source counts and one full example, indented.
///
/// ```text
/// 3 instances of 2 unique errors (sources: stdin, file:/var/log/app.log) in the last 1m
///
/// #1: 2 instances, first seen 2024-05-01T12:00:00.000Z, last seen 2024-05-01T12:00:42.000Z
///     sources: stdin (2)
///     db timeout after 30s
/// ```
pub const DIGEST_MESSAGE: &str = r#"{{ count }} {% if count == 1 %}instance{% else %}instances{% endif %} of {{ events | length }} unique {% if events | length == 1 %}error{% else %}errors{% endif %} (sources: {% for s in sources %}{{ s.name }}{% if not loop.last %}, {% endif %}{% endfor %}){% if period %} in the last {{ period }}{% endif %}
{%- if ungrouped %}
({{ ungrouped }} more beyond the cap on unique errors, not listed){% endif %}
{%- for e in events %}

#{{ loop.index }}: {{ e.count }} {% if e.count == 1 %}instance{% else %}instances{% endif %}, first seen {{ e.first_seen }}, last seen {{ e.last_seen }}
    sources: {% for s in e.sources %}{{ s.name }} ({{ s.count }}){% if not loop.last %}, {% endif %}{% endfor %}
    {{ e.example | indent(4) }}
{%- endfor %}"#;

/// An escalation: the message the policy made (which alarm, how many events
/// within which window, the limit), then the five most frequent messages
/// when the escalation carries them, each by count and the first line of its
/// example.
///
/// ```text
/// ESCALATION pager: alarm errors: 101 events within 5m (limit 100)
///   2 x db timeout after 30s
/// ```
pub const ESCALATION_MESSAGE: &str = r#"ESCALATION {{ alarm }}: {{ line }}
{%- for e in events[:5] %}
  {{ e.count }} x {{ e.example | lines | first }}
{%- endfor %}
{%- if events | length > 5 %}
  … and {{ events | length - 5 }} more unique {% if events | length == 6 %}error{% else %}errors{% endif %}{% endif %}"#;

/// A recovery (a rule's `resolve` line, an expected line or input seen
/// again): one line with the alarm and the message.
pub const RESOLVED_MESSAGE: &str = "RESOLVED {{ alarm }}: {{ line }}";

/// An absence (an expected line or an input not seen for its period): one
/// line with the alarm, the message (which says what is missing) and the
/// period when there is one.
pub const ABSENT_MESSAGE: &str =
    "ABSENT {{ alarm }}: {{ line }}{% if period %} (nothing for {{ period }}){% endif %}";

/// The default template source for `kind`; `None` for [`Kind::Alarm`], whose
/// message is the line itself.
pub fn default_message(kind: Kind) -> Option<&'static str> {
    match kind {
        Kind::Alarm => None,
        Kind::Digest => Some(DIGEST_MESSAGE),
        Kind::Escalation => Some(ESCALATION_MESSAGE),
        Kind::Resolved => Some(RESOLVED_MESSAGE),
        Kind::Absent => Some(ABSENT_MESSAGE),
    }
}

/// The default template for `kind`, compiled on first use; `None` for
/// [`Kind::Alarm`] (and, were a default ever broken, for its kind: the
/// notification then goes out with its message as the policy made it; the
/// unit tests compile every default, so that does not ship).
pub fn default_template(kind: Kind) -> Option<&'static Template> {
    static COMPILED: [OnceLock<Option<Template>>; 4] = [const { OnceLock::new() }; 4];
    let slot = match kind {
        Kind::Alarm => return None,
        Kind::Digest => 0,
        Kind::Escalation => 1,
        Kind::Resolved => 2,
        Kind::Absent => 3,
    };
    COMPILED[slot]
        .get_or_init(|| {
            let source = default_message(kind)?;
            Template::compile(&format!("default {kind} message"), source).ok()
        })
        .as_ref()
}
