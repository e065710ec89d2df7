//! uWSGI's `alarm-fd` (being built).

use super::EventSender;
use crate::config::inputs::AlarmFdDef;
use tokio::sync::watch;

/// An opened descriptor to watch.
pub struct Watch;

/// Opens the descriptor of an `alarm-fd`.
///
/// # Errors
/// Always, for now.
pub fn open(_def: &AlarmFdDef) -> Result<Watch, String> {
    Err("alarm-fd is not built yet".into())
}

/// Watches until `stop`.
pub async fn watch(
    _w: Watch,
    _alarms: Vec<u32>,
    _events: EventSender,
    _stop: watch::Receiver<bool>,
) {
}
