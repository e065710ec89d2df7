//! Alarm policy: whether an event becomes a notification now or never.
//!
//! This stage sits between the matcher and the per-alarm workers, on the reading
//! thread, so that a flood is cut down before it reaches any queue. Today it is
//! uWSGI's `alarm-freq` throttle ([`throttle::Throttle`]).

pub mod chain;
pub mod clock;
pub mod cooldown;
pub mod digest;
pub mod escalation;
pub mod keys;
pub mod mask;
pub mod threshold;
pub mod throttle;
pub mod watch;
