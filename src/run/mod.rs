//! The main job of the binary: builds an [`Engine`] from the config, installs
//! the signal handlers ([`signals`]) that trigger its [`Shutdown`] token (or,
//! under `logalarm run`, forward each signal to the wrapped process), runs
//! it to its end, and turns its [`Summary`](crate::engine::Summary) into the
//! exit code.
//!
//! logalarm ends when its inputs end (stdin at EOF; the wrapped process when
//! it exits for good, then with its exit code), or on SIGTERM, SIGINT or
//! SIGHUP (which `logalarm run` forwards to the process instead, ending when
//! it does).

pub mod signals;

use crate::config::{Config, ConfigError};
use crate::engine::{BuildError, Engine, Mode, Shutdown};
use std::process::ExitCode;

/// Runs the main job until the inputs end or a stop signal.
///
/// Exit code: under `logalarm run`, the wrapped process's (128+N when signal N
/// killed it; 1 when the signal handlers to forward signals cannot be
/// installed). Otherwise 0 when everything queued was delivered or failed for
/// good; 1 when an input could not start or failed, or the drain deadline left
/// notifications undelivered.
///
/// # Errors
/// The config's errors, every one, before anything is read (the caller
/// reports them and exits 2).
pub fn main(config: &Config, mode: Mode) -> Result<ExitCode, Vec<ConfigError>> {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("cannot start the async runtime: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let code = runtime.block_on(serve(config, mode));
    // A reader thread may still be blocked in read(2) after a signal; don't wait for it.
    runtime.shutdown_background();
    code
}

async fn serve(config: &Config, mode: Mode) -> Result<ExitCode, Vec<ConfigError>> {
    let wrap = matches!(mode, Mode::Wrap(_));
    // Caught from before the inputs start: a stop signal arriving while they
    // start must not kill logalarm by its default action, which would skip
    // the cleanup (a socket file left behind); under `logalarm run`, no
    // signal meant for the process may be lost.
    let handlers = signals::Handlers::install(wrap);
    let engine = match Engine::build(config, mode) {
        Ok(engine) => engine,
        Err(BuildError::Config(errors)) => return Err(errors),
        Err(BuildError::Input(e) | BuildError::State(e)) => {
            tracing::error!("{e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let shutdown = Shutdown::new();
    match (handlers, engine.forwarder()) {
        (Ok(handlers), Some(forward)) => {
            tokio::spawn(handlers.forward(forward));
        }
        (Ok(handlers), None) => {
            tokio::spawn(handlers.stop(shutdown.clone()));
        }
        (Err(e), Some(_)) => {
            tracing::error!("cannot install the signal handlers to forward signals: {e}");
            return Ok(ExitCode::FAILURE);
        }
        (Err(_), None) => {
            tracing::warn!("cannot install SIGTERM/SIGINT/SIGHUP handlers; stop with EOF");
        }
    }
    let summary = engine.run(shutdown).await;
    Ok(ExitCode::from(summary.exit_code()))
}
