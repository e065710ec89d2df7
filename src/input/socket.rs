//! Unix socket input (being built).

use super::EventSender;
use crate::config::inputs::InputDef;
use tokio::sync::watch;

/// A bound socket input.
pub struct Listener;

/// Binds the socket of a socket input.
///
/// # Errors
/// Always, for now.
pub fn bind(_def: &InputDef) -> Result<Listener, String> {
    Err("socket inputs are not built yet".into())
}

/// Serves a bound socket until `stop`.
pub async fn serve(_listener: Listener, _events: EventSender, _stop: watch::Receiver<bool>) {}
