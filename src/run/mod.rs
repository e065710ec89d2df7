//! The main job: start the inputs, match what they read, alarm; on a stop
//! signal or when the inputs end, drain the alarm queues within the deadline
//! and exit.
//!
//! The inputs ([`crate::input`]) send batches of lines to one engine thread
//! ([`engine`]) over a bounded queue; every alarm's worker is a task on a small
//! tokio runtime, fed by the engine through its own bounded queue.
//!
//! Which inputs run: the configured files and sockets; the wrapped process's
//! stdout and stderr under `logalarm run`; stdin when neither is configured.
//! `alarm-fd` watches run beside any of them. logalarm ends when its inputs
//! end (stdin at EOF; the wrapped process when it exits for good, then with its
//! exit code), or on SIGTERM, SIGINT or SIGHUP (which `logalarm run` forwards
//! to the process instead, ending when it does).

pub mod engine;

use crate::config::Config;
use crate::dispatch::router::{Route, RouteSpec, Router};
use crate::dispatch::{AlarmStats, worker};
use crate::input::follow::commits::Commits;
use crate::input::{self, EVENT_QUEUE, Event, child, fd, follow, socket};
use crate::plan::Plan;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::{mpsc, oneshot, watch};

/// What to run: plain inputs, or a process to wrap.
pub enum Mode {
    /// Files and sockets from the config, or stdin when there are none.
    Inputs,
    /// `logalarm run -- CMD ARGS…`: the command and its arguments.
    Wrap(Vec<OsString>),
}

/// Runs the main job until the inputs end or a stop signal.
///
/// Exit code: under `logalarm run`, the wrapped process's (128+N when signal N
/// killed it). Otherwise 0 when everything queued was delivered or failed for
/// good; 1 when an input could not start or failed, or the drain deadline left
/// notifications undelivered.
pub fn main(config: &Config, plan: Plan, mode: Mode) -> ExitCode {
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
    let code = runtime.block_on(serve(config, plan, mode));
    // A reader thread may still be blocked in read(2) after a signal; don't wait for it.
    runtime.shutdown_background();
    code
}

/// The stop signals (SIGTERM, SIGINT, SIGHUP), caught from before the inputs
/// start: one arriving while they start must not kill logalarm by its default
/// action, which would skip the cleanup (a socket file left behind).
struct StopSignals(Option<[Signal; 3]>);

impl StopSignals {
    fn install() -> Self {
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::hangup()),
        ) {
            (Ok(term), Ok(int), Ok(hup)) => StopSignals(Some([term, int, hup])),
            _ => {
                tracing::warn!("cannot install SIGTERM/SIGINT/SIGHUP handlers; stop with EOF");
                StopSignals(None)
            }
        }
    }

    /// Resolves with the name of the first stop signal received.
    async fn recv(&mut self) -> &'static str {
        let Some([term, int, hup]) = &mut self.0 else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
            _ = hup.recv() => "SIGHUP",
        }
    }
}

/// The alarm workers and their counters.
struct Workers {
    tasks: Vec<tokio::task::JoinHandle<()>>,
    stats: Vec<(Arc<str>, Arc<AlarmStats>)>,
}

fn start_workers(plan_alarms: Vec<crate::plan::PlannedAlarm>) -> (Workers, Vec<RouteSpec>) {
    // Every queue first: a worker holds a sender of its on_failure alarm's queue.
    let channels: Vec<_> = plan_alarms
        .iter()
        .map(|a| {
            let (tx, rx) = mpsc::channel(a.queue_size);
            (tx, rx, Arc::new(AlarmStats::default()))
        })
        .collect();
    let fallbacks: Vec<Option<worker::Fallback>> = plan_alarms
        .iter()
        .map(|a| {
            a.on_failure.map(|i| worker::Fallback {
                name: plan_alarms[i].name.clone(),
                queue: channels[i].0.clone(),
                stats: channels[i].2.clone(),
            })
        })
        .collect();
    let mut routes = Vec::new();
    let mut tasks = Vec::new();
    let mut stats = Vec::new();
    for ((alarm, (tx, rx, st)), fallback) in plan_alarms.into_iter().zip(channels).zip(fallbacks) {
        let worker = worker::Worker {
            name: alarm.name.clone(),
            action: alarm.action,
            retry: alarm.retry,
            stats: st.clone(),
            fallback,
            message: alarm.message,
        };
        tasks.push(tokio::spawn(worker.run(rx)));
        stats.push((alarm.name.clone(), st.clone()));
        routes.push(RouteSpec {
            route: Route {
                name: alarm.name,
                queue: tx,
                stats: st,
            },
            policy: alarm.policy,
            needs_caps: alarm.needs_caps,
        });
    }
    (Workers { tasks, stats }, routes)
}

impl Workers {
    /// Lets the workers deliver what is queued, within `deadline`; returns
    /// false when notifications were left undelivered. Call once the engine
    /// has ended: each worker ends when its queue is empty and its senders are
    /// gone (the router's, and those of the alarms falling back to it).
    async fn drain(mut self, deadline: Duration) -> bool {
        let drained = tokio::time::timeout(deadline, async {
            for w in &mut self.tasks {
                if let Err(e) = w.await {
                    tracing::error!("an alarm worker failed: {e}");
                }
            }
        })
        .await;
        if drained.is_err() {
            // Cancel what is still running (a retry's wait among it), and give the
            // cancelled actions a moment to clean up (a cmd kills its process
            // group when dropped).
            self.tasks.iter().for_each(tokio::task::JoinHandle::abort);
            let _ = tokio::time::timeout(Duration::from_secs(1), async {
                // A handle already awaited to completion must not be polled again.
                for w in self.tasks.iter_mut().filter(|w| !w.is_finished()) {
                    let _ = w.await;
                }
            })
            .await;
        }
        let mut complete = true;
        for (name, st) in &self.stats {
            let pending = st.pending();
            let get = AlarmStats::get;
            let (delivered, failures, suppressed, overflow, retried, handed) = (
                get(&st.delivered),
                get(&st.failed),
                get(&st.suppressed),
                get(&st.overflow),
                get(&st.retried),
                get(&st.handed_over),
            );
            if pending > 0 {
                complete = false;
                tracing::error!(
                    alarm = %name,
                    "{pending} notifications not delivered within the drain deadline of {}",
                    humantime::format_duration(deadline)
                );
            }
            if delivered
                + failures
                + suppressed
                + overflow
                + pending
                + get(&st.held)
                + get(&st.batched)
                > 0
            {
                let mut extra = String::new();
                if retried > 0 {
                    let _ = write!(extra, ", {retried} {} retried", plural(retried, "attempt"));
                }
                if handed > 0 {
                    let _ = write!(extra, ", {handed} failed handed to on_failure");
                }
                let (held, batched) = (get(&st.held), get(&st.batched));
                if held > 0 {
                    let _ = write!(extra, ", {held} held back by threshold or cooldown");
                }
                if batched > 0 {
                    let _ = write!(extra, ", {batched} events taken into digests");
                }
                tracing::info!(
                    alarm = %name,
                    "{delivered} delivered, {failures} failed, {suppressed} suppressed by alarm-freq, {overflow} dropped on a full queue{extra}"
                );
            }
        }
        complete
    }
}

/// `word` with an `s` unless `n` is 1.
fn plural(n: u64, word: &str) -> String {
    if n == 1 {
        word.to_owned()
    } else {
        format!("{word}s")
    }
}

/// Indexes of the alarms named, in the plan (names were checked by the plan).
fn alarm_indexes<'a>(plan: &Plan, names: impl IntoIterator<Item = &'a str>) -> Vec<u32> {
    names
        .into_iter()
        .filter_map(|n| plan.alarms.iter().position(|a| &*a.name == n))
        .filter_map(|i| u32::try_from(i).ok())
        .collect()
}

async fn serve(config: &Config, mut plan: Plan, mode: Mode) -> ExitCode {
    // Under `logalarm run` the supervisor handles signals (it forwards them).
    let mut signals = matches!(mode, Mode::Inputs).then(StopSignals::install);
    let (events, events_rx) = mpsc::channel::<Event>(EVENT_QUEUE);
    let (stop_inputs, stop_rx) = watch::channel(false);
    let mut failed = false;
    let mut stdin_reader: Option<std::thread::JoinHandle<bool>> = None;

    // Inputs that cannot start (a socket path taken, a descriptor missing) stop
    // logalarm before anything is read.
    let mut sockets = Vec::new();
    let mut file_defs = Vec::new();
    for def in &config.inputs {
        let any = def.as_any();
        if let Some(def) = any.downcast_ref::<socket::config::SocketConfig>() {
            match socket::bind(def) {
                Ok(listener) => sockets.push(listener),
                Err(e) => {
                    tracing::error!("{e}");
                    return ExitCode::FAILURE;
                }
            }
        } else if let Some(def) = any.downcast_ref::<follow::config::FileConfig>() {
            file_defs.push((def.paths.clone(), def.from));
        }
    }
    let mut fds: Vec<(fd::Watch, Vec<u32>)> = Vec::new();
    for def in &config.alarm_fds {
        let alarms = alarm_indexes(&plan, [def.alarm.as_str()]);
        // Lines on the same descriptor share one reader, as in uWSGI: two
        // readers would split its bytes between them.
        if let Some((watch, _)) = fds.iter_mut().find(|(w, _)| w.watches(def)) {
            watch.also(def, alarms);
            continue;
        }
        match fd::open(def) {
            Ok(watch) => fds.push((watch, alarms)),
            Err(e) => {
                tracing::error!("{e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let on_exit = alarm_indexes(&plan, config.run.on_exit.iter().map(|(n, _)| n.as_str()));

    let (workers, routes) = start_workers(std::mem::take(&mut plan.alarms));
    let alarm_stats: Vec<Arc<AlarmStats>> = workers.stats.iter().map(|(_, s)| s.clone()).collect();
    let watches = plan.watches(std::time::Instant::now());
    let rules = plan.rule_routes();
    let router = Router::new(
        routes,
        &rules,
        watches,
        config.settings.alarm_freq(),
        config.settings.msg_size(),
    )
    .with_records(&rules);

    // The engine runs before any input starts: the follower's first pass may
    // read (from = "beginning", saved positions), and is awaited below.
    let commits = (!file_defs.is_empty()).then(|| {
        let progress = alarm_stats
            .iter()
            .map(|s| s.clone() as Arc<dyn crate::input::follow::commits::Progress>)
            .collect();
        Arc::new(Commits::new(progress))
    });
    let matcher = plan.matcher;
    let engine_commits = commits.clone();
    let (engine_done, mut engine_rx) = oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("engine".into())
        .spawn(move || {
            engine::run(&matcher, router, events_rx, engine_commits.as_deref());
            let _ = engine_done.send(());
        });
    if let Err(e) = spawned {
        tracing::error!("cannot start the engine thread: {e}");
        return ExitCode::FAILURE;
    }
    tokio::spawn(engine::ticker(events.downgrade()));

    // Files first, and their first pass done before the sockets serve and the
    // process starts: a line written after that is never taken for one that
    // was there at start (from = "end").
    let mut follower = match commits {
        None => None,
        Some(commits) => {
            let settings = follow::FollowSettings {
                state_dir: config.settings.state_dir.clone(),
                poll_interval: config.settings.poll_interval(),
                rotate_wait: config.settings.rotate_wait(),
                flush_timeout: config.settings.flush_timeout(),
            };
            match follow::start(
                &file_defs,
                &settings,
                events.clone(),
                commits,
                stop_rx.clone(),
            ) {
                Ok(f) => Some(f),
                Err(e) => {
                    tracing::error!("{e}");
                    return ExitCode::FAILURE;
                }
            }
        }
    };
    if let Some(f) = follower.as_mut() {
        f.ready().await;
    }
    // Tasks that clean up after themselves at stop (a socket file is removed).
    let mut input_tasks = Vec::new();
    for listener in sockets {
        input_tasks.push(tokio::spawn(socket::serve(
            listener,
            events.clone(),
            stop_rx.clone(),
        )));
    }
    for (watch, alarms) in fds {
        input_tasks.push(tokio::spawn(fd::watch(
            watch,
            alarms,
            events.clone(),
            stop_rx.clone(),
        )));
    }
    let mut wrapped = None;
    match mode {
        Mode::Wrap(command) => {
            let setup = child::Setup {
                command,
                run: config.run.clone(),
                on_exit,
                passthrough: config.settings.passthrough(),
                msg_size: config.settings.msg_size(),
                child_pid: plan.child_pid.clone(),
            };
            wrapped = Some(tokio::spawn(child::supervise(setup, events.clone())));
        }
        Mode::Inputs if config.inputs.is_empty() => {
            let stdin_events = events.clone();
            let stdin_stop = stop_rx.clone();
            let passthrough = config.settings.passthrough();
            let spawned = std::thread::Builder::new()
                .name("stdin".into())
                .spawn(move || {
                    if let Err(e) = input::stdin::run(passthrough, &stdin_events, &stdin_stop) {
                        tracing::error!("reading stdin failed: {e}");
                        return false;
                    }
                    true
                });
            match spawned {
                Ok(reader) => stdin_reader = Some(reader),
                Err(e) => {
                    tracing::error!("cannot start the stdin thread: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
        Mode::Inputs => {}
    }
    let stopper = engine::Stopper::new(&events);
    drop(events);

    let mut exit_code = None;
    let mut engine_ended = false;
    if let Some(child) = wrapped {
        // The supervisor forwards signals to the process; logalarm ends with it.
        match child.await {
            Ok(code) => exit_code = Some(code),
            Err(e) => {
                tracing::error!("the process supervisor failed: {e}");
                failed = true;
            }
        }
        stopper.stop().await;
    } else {
        tokio::select! {
            _ = &mut engine_rx => {
                engine_ended = true;
                tracing::debug!("end of input");
            }
            sig = async {
                match &mut signals {
                    Some(signals) => signals.recv().await,
                    None => std::future::pending().await,
                }
            } => {
                // Inputs first: a line read after this note is never alarmed.
                let _ = stop_inputs.send(true);
                tracing::info!("{sig}: stopping; delivering what is queued");
                stopper.stop().await;
            }
        }
    }
    let _ = stop_inputs.send(true);
    if !engine_ended {
        let _ = engine_rx.await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        for task in input_tasks {
            let _ = task.await;
        }
    })
    .await;
    if let Some(reader) = stdin_reader.take().filter(|r| r.is_finished()) {
        failed |= !reader.join().unwrap_or(false);
    }
    failed |= !workers.drain(config.settings.drain_timeout()).await;
    if let Some(follower) = follower {
        follower.finish().await;
    }
    match exit_code {
        Some(code) if code != 0 || !failed => ExitCode::from(code),
        _ if failed => ExitCode::FAILURE,
        _ => ExitCode::SUCCESS,
    }
}
