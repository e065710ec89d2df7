//! The engine's counters read as one structure: live ([`Counters`], what a
//! metrics endpoint will serve) and at the end of a run ([`Summary`], what
//! the exit summary prints and the exit code is made of).
//!
//! The counters themselves are the components' own ([`AlarmStats`] per alarm,
//! [`InputStats`] per input), bumped only by their internal events, so what
//! is read here always agrees with what was logged.

use crate::dispatch::{AlarmCounts, AlarmStats};
use crate::input::events::{InputCounts, InputStats};
use std::sync::{Arc, Mutex, PoisonError};

/// One alarm's counters, by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlarmSummary {
    /// The alarm's name.
    pub name: Arc<str>,
    /// Its counters.
    pub counts: AlarmCounts,
}

/// One input's counters, by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputSummary {
    /// The input: `files` (every followed file together), `socket PATH`,
    /// `alarm-fd FD`, `stdin` or `process` (the wrapped process's output).
    pub name: String,
    /// Its counters.
    pub counts: InputCounts,
}

/// Each started input's name and counters.
type InputList = Vec<(String, Arc<InputStats>)>;

/// A handle on the live counters of an engine, cheap to clone and to keep
/// beside it (a metrics endpoint, a test waiting for deliveries). Sockets
/// and `alarm-fd` watches are there from the build; the other inputs appear
/// as the run starts them.
#[derive(Clone, Debug)]
pub struct Counters {
    alarms: Arc<[(Arc<str>, Arc<AlarmStats>)]>,
    /// Locked only when an input starts and when read, never per line.
    inputs: Arc<Mutex<InputList>>,
}

impl Counters {
    /// Counters over `alarms` (in plan order), with no input yet.
    pub(super) fn new(alarms: Vec<(Arc<str>, Arc<AlarmStats>)>) -> Self {
        Counters {
            alarms: alarms.into(),
            inputs: Arc::default(),
        }
    }

    /// Adds an input's counters under `name`.
    pub(super) fn add_input(&self, name: String, stats: Arc<InputStats>) {
        self.inputs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((name, stats));
    }

    /// Every alarm's counters now, in config order.
    pub fn alarms(&self) -> Vec<AlarmSummary> {
        self.alarms
            .iter()
            .map(|(name, stats)| AlarmSummary {
                name: name.clone(),
                counts: stats.counts(),
            })
            .collect()
    }

    /// The counters of the alarm called `name` now, if there is one.
    pub fn alarm(&self, name: &str) -> Option<AlarmCounts> {
        self.alarms
            .iter()
            .find(|(n, _)| &**n == name)
            .map(|(_, stats)| stats.counts())
    }

    /// Every input's counters now: sockets and `alarm-fd` watches (as built),
    /// then the files, stdin or the wrapped process (as they start).
    pub fn inputs(&self) -> Vec<InputSummary> {
        self.inputs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(name, stats)| InputSummary {
                name: name.clone(),
                counts: stats.counts(),
            })
            .collect()
    }
}

/// What a run did: every counter at its end, and how it ended. Returned by
/// [`Engine::run`](super::Engine::run).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Every alarm's counters, in config order.
    pub alarms: Vec<AlarmSummary>,
    /// Every input's counters, in the order of [`Counters::inputs`].
    pub inputs: Vec<InputSummary>,
    /// Something beside delivery failed: an input could not start or failed
    /// (stdin unreadable, the file follower not started), or a task of the
    /// engine could not start or died.
    pub failed: bool,
    /// Under `logalarm run`: the wrapped process's exit code (128+N when
    /// signal N killed it); `None` otherwise, or when its supervisor failed.
    pub exit: Option<u8>,
    /// The shutdown token's cause, when the token ended the run (rather than
    /// the end of the inputs, or of the wrapped process by itself).
    pub stopped_by: Option<String>,
}

impl Summary {
    /// The counters of the alarm called `name`, if there is one.
    pub fn alarm(&self, name: &str) -> Option<&AlarmCounts> {
        self.alarms
            .iter()
            .find(|a| &*a.name == name)
            .map(|a| &a.counts)
    }

    /// The counters of the input called `name`, if it ran.
    pub fn input(&self, name: &str) -> Option<&InputCounts> {
        self.inputs
            .iter()
            .find(|i| i.name == name)
            .map(|i| &i.counts)
    }

    /// Notifications left undelivered at the drain deadline, every alarm together.
    pub fn undelivered(&self) -> u64 {
        self.alarms.iter().map(|a| a.counts.undelivered).sum()
    }

    /// logalarm's exit code for this run: under `logalarm run`, the wrapped
    /// process's code (but 1 rather than 0 when something failed). Otherwise
    /// 0 when everything queued was delivered or failed for good; 1 when
    /// [`Summary::failed`], or notifications were left undelivered.
    pub fn exit_code(&self) -> u8 {
        let failed = self.failed || self.undelivered() > 0;
        match self.exit {
            Some(code) if code != 0 || !failed => code,
            _ if failed => 1,
            _ => 0,
        }
    }
}
