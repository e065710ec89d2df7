//! The main job: read stdin, pass it through, match, alarm; at EOF (or SIGINT,
//! SIGTERM) drain the alarm queues within the deadline and exit.
//!
//! Reading, matching and pass-through run on one dedicated thread with blocking
//! I/O (one read and one write per chunk); every alarm's worker is a task on a
//! small tokio runtime. The two sides meet only at the bounded queues.

use crate::config::Config;
use crate::dispatch::router::{Route, Router};
use crate::dispatch::{AlarmStats, worker};
use crate::input::passthrough::Passthrough;
use crate::input::reader::{LineReader, MAX_LINE};
use crate::matcher::Matcher;
use crate::plan::Plan;
use logalarm_plugin_api::Source;
use std::fs::File;
use std::os::fd::AsFd;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, oneshot, watch};

/// Runs the main job on stdin until EOF or a stop signal.
///
/// Exit code 0 when everything queued was delivered or failed for good; 1 when
/// reading failed or the drain deadline left notifications undelivered.
pub fn stdin(config: &Config, plan: Plan) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(serve(config, plan));
    // The reader thread may still be blocked in read(2) after a signal; don't wait for it.
    runtime.shutdown_background();
    code
}

/// Reads stdin to EOF on the current thread.
/// Reads stdin to EOF, or until `stop` is set (checked once per read).
fn pump(
    matcher: &Matcher,
    mut router: Router,
    passthrough: bool,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    let input = File::from(std::io::stdin().as_fd().try_clone_to_owned()?);
    let mut out = Passthrough::stdout(passthrough);
    let mut reader = LineReader::new(input, MAX_LINE);
    let mut scanner = matcher.scanner(false);
    while let Some(block) = reader.next_block()? {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        out.write(block.raw);
        router.begin_block();
        scanner.scan(block.lines, &mut router);
        router.flush();
    }
    Ok(())
}

async fn stop_signal() -> &'static str {
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::warn!("cannot install SIGTERM/SIGINT handlers; stop with EOF");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}

async fn serve(config: &Config, plan: Plan) -> ExitCode {
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut routes = Vec::new();
    let mut workers = Vec::new();
    let mut stats = Vec::new();
    for alarm in plan.alarms {
        let (tx, rx) = mpsc::channel(alarm.queue_size);
        let st = Arc::new(AlarmStats::default());
        workers.push(tokio::spawn(worker::run(
            alarm.name.clone(),
            alarm.action,
            rx,
            st.clone(),
            stop_rx.clone(),
        )));
        stats.push((alarm.name.clone(), st.clone()));
        routes.push(Route {
            name: alarm.name,
            queue: tx,
            stats: st,
        });
    }
    let rules = plan.rules.iter().map(|r| r.regex.clone()).collect();
    let router = Router::new(
        routes,
        rules,
        config.alarm_freq(),
        config.msg_size(),
        Source::Stdin,
    );
    let matcher = plan.matcher;
    let passthrough = config.passthrough();
    let stop = Arc::new(AtomicBool::new(false));
    let stop_reader = stop.clone();
    let (done_tx, done_rx) = oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("reader".into())
        .spawn(move || {
            let _ = done_tx.send(pump(&matcher, router, passthrough, &stop_reader));
        });
    let mut failed = false;
    if let Err(e) = spawned {
        tracing::error!("cannot start the reader thread: {e}");
        failed = true;
    } else {
        tokio::select! {
            result = done_rx => match result {
                Ok(Ok(())) => tracing::debug!("end of input"),
                Ok(Err(e)) => {
                    tracing::error!("reading stdin failed: {e}");
                    failed = true;
                }
                Err(_) => {
                    tracing::error!("the reader thread stopped unexpectedly");
                    failed = true;
                }
            },
            sig = stop_signal() => {
                stop.store(true, Ordering::Relaxed);
                tracing::info!("{sig}: stopping; delivering what is queued");
            }
        }
    }
    let _ = stop_tx.send(true);
    let deadline = config.drain_timeout();
    let drained = tokio::time::timeout(deadline, async {
        for w in &mut workers {
            if let Err(e) = w.await {
                tracing::error!("an alarm worker failed: {e}");
            }
        }
    })
    .await;
    if drained.is_err() {
        // Cancel what is still running, and give the cancelled actions a moment to
        // clean up (a cmd kills its process group when dropped).
        workers.iter().for_each(tokio::task::JoinHandle::abort);
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            // A handle already awaited to completion must not be polled again.
            for w in workers.iter_mut().filter(|w| !w.is_finished()) {
                let _ = w.await;
            }
        })
        .await;
    }
    for (name, st) in &stats {
        let pending = st.pending();
        let get = AlarmStats::get;
        let (delivered, failures, suppressed, overflow) = (
            get(&st.delivered),
            get(&st.failed),
            get(&st.suppressed),
            get(&st.overflow),
        );
        if pending > 0 {
            failed = true;
            tracing::error!(
                alarm = %name,
                "{pending} notifications not delivered within the drain deadline of {}",
                humantime::format_duration(deadline)
            );
        }
        if delivered + failures + suppressed + overflow + pending > 0 {
            tracing::info!(
                alarm = %name,
                "{delivered} delivered, {failures} failed, {suppressed} suppressed by alarm-freq, {overflow} dropped on a full queue"
            );
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
