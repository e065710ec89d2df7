//! Alarm policy: whether an event becomes a notification now, later (in a
//! digest), or never.
//!
//! This stage sits between the matcher and the per-alarm workers, on the
//! matching thread, so that a flood is cut down before it reaches any queue.
//! Each alarm's [`chain::Chain`] composes, in a fixed order, its
//! [`escalation`], [`threshold`], [`digest`] (grouping by [`mask`]ed message),
//! [`cooldown`] and uWSGI's `alarm-freq` [`throttle`]; keyed state is bounded
//! by [`keys::Keyed`]. [`watch`] fires on what did not happen (expected lines,
//! silent inputs) and on recovery lines. Every decision takes the time as an
//! argument, so it is tested on a simulated clock; `logalarm test` replays a
//! log on the times in its lines ([`clock`]).
//!
//! Each policy is a component ([`component`]): its module holds its config
//! (TOML table and INI option), its checks, its build into a [`component::Policy`]
//! and its tests; [`component::KINDS`] lists them in chain order.

pub mod chain;
pub mod clock;
pub mod component;
pub mod cooldown;
pub mod digest;
pub mod escalation;
pub mod keys;
pub mod mask;
pub mod threshold;
pub mod throttle;
pub mod watch;
