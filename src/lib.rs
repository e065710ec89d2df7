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
//! - [`config`] reads uWSGI INI (with uWSGI's config-time expansion), TOML and
//!   the command line into one [`config::Config`];
//! - [`plan`] checks it and builds the actions, the [`matcher::Matcher`] and
//!   the rules the router takes;
//! - [`input`] reads chunks and hands out whole lines; pass-through copies them on;
//! - [`matcher`] finds, per line, the alarms to fire, with uWSGI's rule order semantics;
//! - [`record`] takes a multiline rule's continuation lines into one event (a traceback);
//! - [`policy`] decides whether an event becomes a notification now, later,
//!   batched or never ([`policy::chain`]);
//! - [`dispatch`] queues notifications per alarm and runs each alarm's worker;
//! - [`engine`] builds all of them from a config ([`engine::Engine::build`]) and runs
//!   them until the inputs end or a shutdown token fires ([`engine::Engine::run`]),
//!   returning the run's counters ([`engine::Summary`]);
//! - [`run`] is the binary's main job: signals, the engine, the exit code; [`report`]
//!   prints `check` and `test` (the dry run, and `--expect` rule unit tests);
//! - [`text`] holds byte-text helpers below the stages; [`logging`] logalarm's own log;
//!   [`internal_event`] the one shape of every internal event (one call logs and counts).
//!
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
pub mod text;
