//! Which state directory a run uses, taken once for the whole engine.
//!
//! The directory is locked ([`StateDir::acquire`]) when something needs it:
//! followed files (their read positions), or a state directory the user
//! named (`state_dir`, or systemd's `$STATE_DIRECTORY`), where the outbox
//! journals the alarm queues (`STATE_DIR/outbox/`). The engine holds the lock for
//! its whole life and hands the same [`StateDir`] to every component.
//!
//! A restart must never silently follow without its saved positions: a
//! directory another instance still holds is waited for (`state_lock_wait`),
//! then refused (the run does not start, exit 1), unless the user asked to run
//! without it (`state_busy = "ignore"`, said loudly). A directory that cannot
//! be created or written is reported as an error, and the run goes on
//! without it.

use crate::config::Config;
use crate::state::{self, AcquireError, Busy, StateDir};
use std::sync::Arc;

/// Whether `config` names a state directory (`state_dir`, or systemd's
/// `$STATE_DIRECTORY`): then the run keeps one whatever its inputs, and the
/// outbox journals there.
pub fn named(config: &Config) -> bool {
    config.settings.state_dir.is_some() || state::systemd_dir().is_some()
}

/// The state directory of a run built from `config`, locked; `None` when
/// the run needs none, or runs without one (each case logged).
///
/// Blocks for up to `state_lock_wait` while another instance holds it.
///
/// # Errors
/// The directory is held by another logalarm for the whole wait, and
/// `state_busy` is `refuse`: the message says so, and how to choose otherwise.
pub fn acquire(config: &Config) -> Result<Option<Arc<StateDir>>, String> {
    let follows = config
        .inputs
        .iter()
        .any(|i| i.kind().key == crate::input::follow::config::KIND.key);
    let named = named(config);
    if !follows && !named {
        return Ok(None);
    }
    let without = match (follows, named) {
        (true, true) => {
            "following without saving read positions, and alarm queues are kept in memory only"
        }
        (true, false) => "following without saving read positions",
        (false, _) => "alarm queues are kept in memory only",
    };
    let Some(dir) = config
        .settings
        .state_dir
        .clone()
        .or_else(state::default_dir)
    else {
        tracing::warn!("no state directory (set --state-dir); {without}");
        return Ok(None);
    };
    match StateDir::acquire(&dir, config.settings.state_lock_wait()) {
        Ok(state) => {
            tracing::debug!("state dir {}: locked", dir.display());
            Ok(Some(Arc::new(state)))
        }
        Err(AcquireError::Unusable(e)) => {
            tracing::error!("{e}; {without}");
            Ok(None)
        }
        Err(busy @ AcquireError::Busy { .. }) => match config.settings.state_busy() {
            Busy::Refuse => Err(format!(
                "{busy}; not starting (state_busy = \"refuse\"): give each instance its own --state-dir (state_dir), or set state_busy = \"ignore\" to run without it"
            )),
            Busy::Ignore => {
                tracing::error!(
                    "{busy}; running WITHOUT it (state_busy = \"ignore\"): read positions are neither resumed nor saved, so lines written while logalarm was down are not read, and a restart may read lines again; alarm queues are kept in memory only"
                );
                Ok(None)
            }
        },
    }
}
