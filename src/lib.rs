//! logalarm: a standalone log-line alarm engine — uWSGI's alarm subsystem
//! (`alarm`, `log-alarm`, `alarm-freq`, …) as its own program.
//!
//! The flow of one line, one module each:
//!
//! ```text
//! input ──lines──▶ matcher ──hits──▶ policy ──────────▶ per-alarm worker ──▶ action plugin
//! (stdin, files,   (one pass,        (escalate,          (bounded queue,     (cmd, signal, log,
//!  socket, child)   anti-loop skip)   threshold, digest,  retries)            http, smtp, xmpp)
//!   │                                 cooldown, alarm-freq)
//!   └──▶ pass-through (stdout, byte for byte)
//! ```
//!
//! - [`component`] is what every component shares: the typed
//!   [`component::ConfigError`] (origin, what is wrong, the fix), option docs
//!   and TOML table reading with "did you mean";
//! - [`input`] reads chunks and hands out whole lines; pass-through copies them on.
//!   Each input kind owns its config, its build and its events, behind
//!   [`input::component::InputConfig`] and [`input::component::Input`], listed
//!   once in [`input::component::KINDS`];
//! - [`matcher`] finds, per line, the alarms to fire, with uWSGI's rule order semantics;
//! - [`record`] takes a multiline rule's continuation lines into one event (a traceback);
//! - [`policy`] decides whether an event becomes a notification now, later,
//!   batched or never ([`policy::chain`]); each policy owns its config and
//!   decision behind [`policy::component::Policy`], listed in chain order in
//!   [`policy::component::KINDS`];
//! - [`dispatch`] queues notifications per alarm and runs each alarm's worker;
//! - [`config`] reads uWSGI INI (with uWSGI's config-time expansion), TOML and
//!   the command line into one [`config::Config`], through one option table
//!   ([`config::options`]) and one settings table ([`config::settings`]) that the
//!   components fill;
//! - [`plan`] checks the config's cross-references and builds the actions, the
//!   [`matcher::Matcher`] and the rules the router takes;
//! - [`engine`] builds all of them from a config ([`engine::Engine::build`]) and runs
//!   them until the inputs end or a shutdown token fires ([`engine::Engine::run`]),
//!   returning the run's counters ([`engine::Summary`]);
//! - [`run`] is the binary's main job: signals, the engine, the exit code; [`report`]
//!   prints `check` and `test` (the dry run, and `--expect` rule unit tests);
//!   [`cli`] is the command line, its flags made from the option table;
//! - [`text`] holds byte-text helpers below the stages; [`logging`] logalarm's own log;
//!   [`internal_event`] the one shape of every internal event (one call logs and counts);
//!   [`state`] the state directory and its lock, which the engine takes once for
//!   every component that keeps something across restarts.
//!
//! Each stage uses only the stages listed before it, and the helpers of the
//! last item, which sit below them all.
//! No module uses one that uses it back (`tests/layout.rs`).

#![warn(missing_docs)]

pub mod cli;
pub mod component;
pub mod config;
pub mod dispatch;
pub mod engine;
pub mod input;
pub mod internal_event;
pub mod logging;
pub mod matcher;
pub mod plan;
pub mod policy;
pub mod record;
pub mod report;
pub mod run;
pub mod state;
pub mod text;
