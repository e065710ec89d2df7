//! What a policy is, as a component: its config ([`PolicyConfig`]), read
//! from TOML or from its uWSGI-style INI option by its [`Kind`]; its build
//! into the running thing ([`PolicyConfig::build`] → [`Policy`]); and the
//! registry [`KINDS`], in chain order.
//!
//! A new policy is one new module (its config, build, decision and tests)
//! and one line in [`KINDS`]; the TOML and INI readers, `logalarm check`,
//! the plan and the chain find it there.

use super::chain::{Escalate, Key, Verdict};
use super::{cooldown, digest, escalation, threshold};
use crate::component::toml_doc::{Reader, Schema};
use crate::component::{ConfigError, OptionDoc, Origin};
use logalarm_plugin_api::{Aggregate, Notification};
use logalarm_template::Template;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use toml::Spanned;
use toml::de::DeValue;

/// Default cap on keys held by each keyed policy of an alarm.
pub const DEFAULT_MAX_KEYS: usize = 10_000;

/// The policies, in the order the chain applies them (see [`super::chain`]):
/// escalation counts every event, a threshold decides whether there is
/// anything to say, a digest whether to say it now or later, a cooldown how
/// often. uWSGI's alarm-freq is not here: it is the chain's own last step.
pub static KINDS: &[&Kind] = &[
    &escalation::KIND,
    &threshold::KIND,
    &digest::KIND,
    &cooldown::KIND,
];

/// One alarm's keys of one policy kind as read from TOML: each key the kind
/// owns ([`Kind::keys`]) with its value.
pub type TomlKeys<'a> = Vec<(&'static str, Spanned<DeValue<'a>>)>;

/// Reads a kind's keys of one alarm (`path` is `alarm.NAME`): `None`, with
/// the errors given to the reader or pushed to `errors`, when they are wrong.
pub type FromToml = fn(
    reader: &mut Reader<'_>,
    path: &str,
    keys: TomlKeys<'_>,
    errors: &mut Vec<ConfigError>,
) -> Option<Box<dyn PolicyConfig>>;

/// Reads a kind's INI option value (`NAME` first, as written).
///
/// # Errors
/// A value not of [`Kind::ini_form`], with what is wrong in it.
pub type FromIni = fn(value: &str, origin: &Origin) -> Result<Box<dyn PolicyConfig>, String>;

/// A policy kind: its names in each syntax, and how to read its config.
pub struct Kind {
    /// The TOML keys of an `[alarm.NAME]` table it owns; the first is its name.
    pub keys: &'static [&'static str],
    /// Its INI option and command-line flag (`alarm-threshold`), or `None`
    /// when it has none.
    pub option: Option<OptionDoc>,
    /// The INI option's value after the alarm name, with an example
    /// (`COUNT WINDOW [KEY], e.g. ...`).
    pub ini_form: &'static str,
    /// The keys of its TOML table (an unknown one is named, with "did you mean").
    pub table: Schema,
    /// Reads its keys of one alarm.
    pub from_toml: FromToml,
    /// Reads its INI option's value.
    pub from_ini: FromIni,
}

impl Kind {
    /// The policy's name: its first TOML key (`threshold`).
    pub fn name(&self) -> &'static str {
        self.keys.first().copied().unwrap_or_default()
    }
}

/// The kind that owns the TOML key `key` of an alarm.
pub fn by_key(key: &str) -> Option<&'static Kind> {
    KINDS.iter().copied().find(|k| k.keys.contains(&key))
}

/// The kind whose INI option is `option`.
pub fn by_ini(option: &str) -> Option<&'static Kind> {
    KINDS
        .iter()
        .copied()
        .find(|k| k.option.as_ref().is_some_and(|o| o.is(option)))
}

/// A policy's config as read and checked, before it is built.
pub trait PolicyConfig: fmt::Debug + Send + Sync {
    /// Its kind.
    fn kind(&self) -> &'static Kind;
    /// Where it was written.
    fn origin(&self) -> &Origin;
    /// One line for `logalarm check`; `alarm_key` is the alarm's own key
    /// template, which a keyed policy without its own counts by.
    fn describe(&self, alarm_key: Option<&str>) -> String;
    /// Whether a template of its own (a key) uses capture groups.
    fn templates(&self) -> Vec<&str> {
        Vec::new()
    }
    /// The alarms it fires besides its own (an escalation's pager).
    fn fires(&self) -> Vec<&str> {
        Vec::new()
    }
    /// Builds the running policy.
    ///
    /// # Errors
    /// What only the whole config shows: a key template that does not
    /// compile, an alarm it names that is not defined; `None` when what
    /// failed was reported already (it names an alarm that failed to load).
    fn build(&self, cx: &BuildContext<'_>) -> Result<Box<dyn Policy>, Option<ConfigError>>;
    /// A copy (the config is kept in [`crate::config::Config`], which is cloned).
    fn clone_box(&self) -> Box<dyn PolicyConfig>;
}

impl Clone for Box<dyn PolicyConfig> {
    fn clone(&self) -> Self {
        self.clone_box()
    }
}

/// What building a policy may look at beyond its own config.
pub struct BuildContext<'a> {
    /// The alarm's name.
    pub alarm: &'a str,
    /// The alarm's index among the plan's alarms.
    pub me: u32,
    /// Keys each keyed policy holds at most (the alarm's `max_keys`).
    pub max_keys: usize,
    /// The plan's alarms by name: the index of one, if it is planned.
    pub alarm_index: &'a dyn Fn(&str) -> Option<u32>,
    /// Whether an alarm of this name was written, loaded or not (a name
    /// that failed to load has its own error already).
    pub defines: &'a dyn Fn(&str) -> bool,
}

/// Why [`BuildContext::alarm`] found no usable alarm.
pub enum AlarmRef {
    /// The alarm's index.
    Found(u32),
    /// The alarm names itself.
    Itself,
    /// Not written at all.
    Unknown,
    /// Written, but it failed to load (its error is reported already).
    Broken,
}

impl BuildContext<'_> {
    /// Compiles a key template of this alarm; `what` names it (`threshold.key`).
    ///
    /// # Errors
    /// A template that does not compile, at `origin`.
    pub fn key(&self, template: &str, what: &str, origin: &Origin) -> Result<Key, ConfigError> {
        Template::compile(&format!("alarm.{}.{what}", self.alarm), template)
            .map(Arc::new)
            .map_err(|e| ConfigError::at(origin, e))
    }

    /// Finds the alarm named `name`.
    pub fn alarm(&self, name: &str) -> AlarmRef {
        match (self.alarm_index)(name) {
            Some(i) if i == self.me => AlarmRef::Itself,
            Some(i) => AlarmRef::Found(i),
            None if (self.defines)(name) => AlarmRef::Broken,
            None => AlarmRef::Unknown,
        }
    }
}

/// What one policy decided for one event.
#[derive(Debug)]
pub enum Step {
    /// The event goes on to the next policy.
    Next,
    /// The chain ends here with this verdict.
    Stop(Verdict),
}

/// Per event, what the policies share: the alarm's key, the escalation an
/// event set off, the count of key templates that failed.
#[derive(Debug, Default)]
pub struct Cx {
    /// An escalation this event set off.
    pub escalate: Option<Escalate>,
    /// Key templates that failed to render, so far (each event then counts
    /// under the empty key).
    pub key_errors: u64,
}

impl Cx {
    /// A policy's key for `note`: its own template rendered, or else the
    /// alarm's key (rendered once per event into `note.key`).
    pub fn key(&mut self, own: Option<&Key>, note: &Notification) -> Option<Arc<str>> {
        match own {
            Some(template) => self.render(template, note),
            None => note.key.clone(),
        }
    }

    /// Renders `template` for `note`; a failure counts and gives the empty key.
    pub fn render(&mut self, template: &Key, note: &Notification) -> Option<Arc<str>> {
        if let Some(group) = direct_group(template.source()) {
            // A group that did not take part renders as nothing, as in the template.
            let caps = note.caps.as_deref();
            let text = match group {
                Ok(i) => caps.and_then(|c| c.groups.get(i)?.as_deref()),
                Err(name) => caps.and_then(|c| c.name(name)),
            };
            return Some(text.unwrap_or("").into());
        }
        match template.render(note) {
            Ok(text) => Some(text.into()),
            Err(e) => {
                self.key_errors += 1;
                tracing::debug!("key template: {e}; the event counts under the empty key");
                Some("".into())
            }
        }
    }
}

/// The key's text, `""` for none.
pub fn key_text(key: Option<&Arc<str>>) -> &str {
    key.map_or("", |k| k)
}

/// The capture group a key template is nothing but (`{{ caps.ip }}`,
/// `{{ caps[1] }}`): such a key is read from the groups directly, without
/// building the whole template context per event (5x faster).
pub(crate) fn direct_group(source: &str) -> Option<Result<usize, &str>> {
    let inner = source.trim().strip_prefix("{{")?.strip_suffix("}}")?.trim();
    let group = inner.strip_prefix("caps")?;
    if let Some(name) = group.strip_prefix('.') {
        let ident = !name.is_empty()
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            && !name.as_bytes()[0].is_ascii_digit();
        return ident.then_some(Err(name));
    }
    let index = group.strip_prefix('[')?.strip_suffix(']')?.trim();
    index.parse().ok().map(Ok)
}

/// A running policy: one alarm's state of one kind. Runs on the engine
/// thread, per event that fires the alarm (never per line); the clock is
/// passed in, so it is tested on a simulated clock.
pub trait Policy: Send + fmt::Debug {
    /// Decides for one event made at `now`.
    fn decide(&mut self, note: &mut Notification, now: Instant, cx: &mut Cx) -> Step;
    /// A notification's `suppressed` count that was taken but not delivered
    /// (its queue was full): `true` when this policy took it back.
    fn give_back(&mut self, _note: &Notification) -> bool {
        false
    }
    /// When what this policy holds is due (a digest).
    fn due(&self) -> Option<Instant> {
        None
    }
    /// What this policy held and is due by `now` (or at once with `force`).
    fn take(&mut self, _now: Instant, _force: bool) -> Option<Aggregate> {
        None
    }
    /// Keys evicted so far (their state was lost to `max_keys`).
    fn evicted(&self) -> u64 {
        0
    }
    /// The same policy with fresh state (`logalarm test` replays a log once per alarm).
    fn fresh(&self) -> Box<dyn Policy>;
}

/// Splits `value` at whitespace into `n` words and the rest (trimmed, maybe empty).
pub fn words(value: &str, n: usize) -> Option<(Vec<&str>, &str)> {
    let mut rest = value.trim();
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let (word, after) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        if word.is_empty() {
            return None;
        }
        out.push(word);
        rest = after.trim_start();
    }
    Some((out, rest))
}

/// A whole number word of an INI value (`what` names it: `COUNT`), 0 to
/// 4294967295 (each policy checks its own least value and range after).
///
/// # Errors
/// A word that is not a whole number, or one past 4294967295, with the range.
pub fn count(word: &str, what: &'static str) -> Result<u32, String> {
    crate::component::range::Count::new(0, u64::from(u32::MAX), what).parse(word)
}

/// `d` as humans read it (`5m`, `1h 30m`).
pub fn human(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// ` per key TEMPLATE` for `check`: the policy's own key, else the alarm's.
pub fn per_key(own: Option<&str>, alarm_key: Option<&str>) -> String {
    own.or(alarm_key)
        .map(|k| format!(" per key {k}"))
        .unwrap_or_default()
}

/// Reads the value of one TOML key of a policy: the origin of `path.key` and
/// the value deserialized, or `None` with the error given to `reader`.
pub fn toml_value<T: serde::de::DeserializeOwned>(
    reader: &mut Reader<'_>,
    path: &str,
    key: &str,
    value: Spanned<DeValue<'_>>,
) -> Option<(Origin, T)> {
    let origin = reader.origin(value.span().start, format!("{path}.{key}"));
    let value = reader.value::<T>(&format!("{path}.{key}"), value)?;
    Some((origin, value))
}
