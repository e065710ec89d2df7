//! logalarm: a standalone log-line alarm engine — uWSGI's alarm subsystem
//! (`alarm`, `log-alarm`, `alarm-freq`, …) as its own program.
//!
//! The flow of one line, one module each:
//!
//! ```text
//! input ──lines──▶ matcher ──hits──▶ policy ──▶ per-alarm worker ──▶ action plugin
//! (stdin)          (one pass,        (alarm-freq   (bounded queue)      (cmd, signal, log)
//!   │               anti-loop skip)   throttle)
//!   └──▶ pass-through (stdout, byte for byte)
//! ```
//!
//! - [`config`] reads uWSGI INI, TOML and the command line into one [`config::Config`];
//! - [`plan`] checks it and builds the actions and the [`matcher::Matcher`];
//! - [`input`] reads chunks and hands out whole lines; pass-through copies them on;
//! - [`matcher`] finds, per line, the alarms to fire, with uWSGI's rule order semantics;
//! - [`policy`] decides whether a hit becomes a notification ([`policy::throttle`]);
//! - [`record`] takes a multiline rule's continuation lines into one event (a traceback);
//! - [`dispatch`] queues notifications per alarm and runs each alarm's worker;
//! - [`run`] ties them together for the main job; [`report`] prints `check` and `test`
//!   (the dry run, and `--expect` rule unit tests).

#![warn(missing_docs)]

pub mod cli;
pub mod config;
pub mod dispatch;
pub mod input;
pub mod logging;
pub mod matcher;
pub mod plan;
pub mod policy;
pub mod record;
pub mod report;
pub mod run;
pub mod text;
