//! What an input is, as a component: its config ([`InputConfig`]), read
//! from an `[[input]]` TOML table or from its INI options and command-line
//! flags by its [`Kind`]; its build into an [`Input`] (what can fail at
//! start, such as binding a socket, fails there), which the engine starts;
//! and the registry [`KINDS`].
//!
//! A new input kind is one new module (its config, its reading, its events
//! and its tests) and one line in [`KINDS`]: the TOML and INI readers, the
//! command line's options, `logalarm check`, the `stall_after` watches and
//! the engine find it there. The lines it reads carry a
//! `Source` of its own kind name, which the
//! plugins never need to know in advance.

use super::events::InputStats;
use super::follow::FollowSettings;
use super::follow::commits::Commits;
use super::{EventSender, follow, socket};
use crate::component::toml_doc::{Reader, Schema};
use crate::component::{ConfigError, OptionDoc, Origin};
use logalarm_plugin_api::Source;
use std::any::Any;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::watch;
use toml::Spanned;
use toml::de::DeValue;

/// The input kinds an `[[input]]` table or an option may configure.
pub static KINDS: &[&Kind] = &[&follow::config::KIND, &socket::config::KIND];

/// Reads one `[[input]]` table of a kind (`path` is `input[N]`); the table
/// holds its kind's keys only (`stall_after` and `on_stall`, which every
/// input takes, are read by the caller). `None`, with the error given to
/// `reader` or pushed to `errors`, when it is wrong.
pub type FromToml = fn(
    reader: &mut Reader<'_>,
    path: &str,
    table: Spanned<DeValue<'_>>,
    errors: &mut Vec<ConfigError>,
) -> Option<Box<dyn InputConfig>>;

/// Applies one INI option or command-line flag of a kind (`follow`,
/// `socket-mode`, …) to the inputs configured so far: it adds one, or sets
/// something on those of its kind defined before it. `Ok(false)` when the
/// option is not the kind's.
///
/// # Errors
/// A malformed value, with the form expected.
pub type AddOption = fn(
    inputs: &mut Vec<Box<dyn InputConfig>>,
    option: &str,
    value: &str,
    origin: &Origin,
) -> Result<bool, String>;

/// Builds the inputs of a kind from all its configs at once (files are
/// followed by one follower, which holds one state directory).
///
/// # Errors
/// What cannot start, named with its origin and the fix (a socket path
/// taken).
pub type Build =
    fn(configs: &[&dyn InputConfig], cx: &BuildContext) -> Result<Vec<Box<dyn Input>>, String>;

/// An input kind: how it is named and read in each syntax, and built.
pub struct Kind {
    /// The key whose presence makes an `[[input]]` table of this kind
    /// (`file`, `socket`); also the kind's name.
    pub key: &'static str,
    /// The keys its `[[input]]` table takes.
    pub table: Schema,
    /// Reads its `[[input]]` table.
    pub from_toml: FromToml,
    /// Its INI options and command-line flags.
    pub options: &'static [OptionDoc],
    /// Applies one of them.
    pub add_option: AddOption,
    /// Builds its configured inputs.
    pub build: Build,
}

/// The global settings inputs take (TOML's top-level keys).
#[derive(Clone, Debug)]
pub struct BuildContext {
    /// `state_dir`, `poll_interval`, `rotate_wait`, `flush_timeout`.
    pub follow: FollowSettings,
}

/// A boxed future an input hands the engine.
pub type Task<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// What an input needs to run.
pub struct StartContext {
    /// Where its lines go: the matching thread.
    pub events: EventSender,
    /// Set when it must stop reading.
    pub stop: watch::Receiver<bool>,
    /// The alarms' delivery progress, by which a followed file's position
    /// is saved once the alarms of the lines before it are delivered.
    pub commits: Arc<Commits>,
}

/// A started input.
pub struct Started {
    /// Its counters, each by the name the summary lists it under.
    pub stats: Vec<(String, Arc<InputStats>)>,
    /// Ends once the input has stopped (after [`StartContext::stop`]) and
    /// cleaned up (a socket file removed).
    pub stopped: Task<()>,
    /// Runs after the alarm queues are drained: saves what was delivered
    /// (a follower's read positions).
    pub finish: Option<Task<()>>,
}

/// A built input, ready to start.
pub trait Input: Send {
    /// Starts reading. Resolves once the input has taken its first look
    /// (a follower's first pass over the files found at start), so that an
    /// input started after it never has its lines taken for older ones.
    ///
    /// # Errors
    /// It could not start (a thread not spawned, a bad glob).
    fn start(self: Box<Self>, cx: StartContext) -> Task<Result<Started, String>>;
}

/// Builds every configured input, kind by kind in [`KINDS`] order (files
/// first: their first pass is done before the sockets serve).
///
/// # Errors
/// The first input that cannot start.
pub fn build(
    inputs: &[Box<dyn InputConfig>],
    cx: &BuildContext,
) -> Result<Vec<Box<dyn Input>>, String> {
    let mut built = Vec::new();
    for kind in KINDS {
        let mine: Vec<&dyn InputConfig> = inputs
            .iter()
            .map(AsRef::as_ref)
            .filter(|i| std::ptr::eq(i.kind(), *kind))
            .collect();
        if !mine.is_empty() {
            built.extend((kind.build)(&mine, cx)?);
        }
    }
    Ok(built)
}

/// Which lines are an input's, for its `stall_after` watch.
pub type SourceFilter = Arc<dyn Fn(&Source) -> bool + Send + Sync>;

/// One input's config as read and checked.
pub trait InputConfig: fmt::Debug + Send + Sync + Any {
    /// Its kind.
    fn kind(&self) -> &'static Kind;
    /// Where it was written.
    fn origin(&self) -> &Origin;
    /// What it reads, as a stall names it (`file:/var/log/*.log`,
    /// `socket:/run/logalarm.sock`).
    fn name(&self) -> String;
    /// What it reads and how, for `logalarm check`, after its kind
    /// (`/var/log/*.log (from end)`).
    fn describe(&self) -> String;
    /// Which lines are its own: those of its [`Source`]s.
    ///
    /// # Errors
    /// A pattern of its that cannot be compiled.
    fn sources(&self) -> Result<SourceFilter, String>;
    /// Itself, for its own kind's code to reach its fields.
    fn as_any(&self) -> &dyn Any;
    /// Itself, for its own kind's options to change it.
    fn as_any_mut(&mut self) -> &mut dyn Any;
    /// A copy (the config is kept in [`crate::config::Config`], which is cloned).
    fn clone_box(&self) -> Box<dyn InputConfig>;
}

impl Clone for Box<dyn InputConfig> {
    fn clone(&self) -> Self {
        self.clone_box()
    }
}

/// Every input kind's options.
pub fn options() -> impl Iterator<Item = &'static OptionDoc> {
    KINDS.iter().flat_map(|k| k.options.iter())
}

/// Applies an INI option or command-line flag of any input kind;
/// `Ok(false)` when none has it.
///
/// # Errors
/// A malformed value, with the form expected.
pub fn add_option(
    inputs: &mut Vec<Box<dyn InputConfig>>,
    option: &str,
    value: &str,
    origin: &Origin,
) -> Result<bool, String> {
    for kind in KINDS {
        if kind.options.iter().any(|o| o.is(option)) {
            return (kind.add_option)(inputs, option, value, origin);
        }
    }
    Ok(false)
}

/// The inputs of type `T` among `inputs`, to be changed by `T`'s options.
pub fn of_kind<T: 'static>(inputs: &mut [Box<dyn InputConfig>]) -> impl Iterator<Item = &mut T> {
    inputs
        .iter_mut()
        .filter_map(|i| i.as_any_mut().downcast_mut::<T>())
}

/// A value that must not be empty (surrounding spaces dropped).
///
/// # Errors
/// `is empty; write WHAT`.
pub fn nonempty(value: &str, what: &str) -> Result<String, String> {
    let value = value.trim();
    if value.is_empty() {
        Err(format!("is empty; write {what}"))
    } else {
        Ok(value.to_owned())
    }
}
