//! One engine: [`Engine::build`] makes every component of a run from a
//! [`Config`], and [`Engine::run`] runs them until the inputs end or a
//! [`Shutdown`] token fires, then returns the run's [`Summary`].
//!
//! ```no_run
//! # async fn example(config: logalarm::config::Config) -> Result<(), logalarm::engine::BuildError> {
//! use logalarm::engine::{Engine, Mode, Shutdown};
//! let engine = Engine::build(&config, Mode::Inputs)?;
//! let shutdown = Shutdown::new();
//! let stopper = shutdown.clone(); // to a signal task, a test, a reload
//! let summary = engine.run(shutdown).await;
//! std::process::exit(i32::from(summary.exit_code()));
//! # }
//! ```
//!
//! The inputs ([`crate::input`]) send batches of lines to one matching thread
//! ([`matching`]) over a bounded queue; every alarm's worker is a task fed by
//! that thread through its own bounded queue ([`workers`]).
//!
//! Which inputs run: the configured files and sockets; the wrapped process's
//! stdout and stderr under [`Mode::Wrap`]; stdin when neither is configured.
//! `alarm-fd` watches run beside any of them. A run ends when its inputs end
//! (stdin at EOF; the wrapped process when it exits for good), or when its
//! shutdown token is triggered (under [`Mode::Wrap`], that stops the process
//! with SIGTERM and the run ends with it).
//!
//! **Shutdown.** The token ([`shutdown`]) is the one way to ask an engine to
//! stop; the engine relays it to every task it started: the inputs stop
//! first (a line read after the stop note is never alarmed), the matching
//! thread takes what was queued before the stop and ends, each worker
//! delivers what its queue holds within the drain deadline, and the file
//! follower saves the positions delivered. Each group of tasks holds the
//! parts of a drop-to-complete [`Completion`], so the engine knows when all
//! are done. Signals are not the engine's: the binary's main job
//! (`crate::run`) installs their handlers and triggers the token (or, under
//! `logalarm run`, hands each signal to [`Engine::forwarder`]).
//!
//! **Building beside a running engine (the hook of a reload).**
//! [`Engine::build`] has no effect beyond the resources its config names: it
//! builds the plan (actions, matcher), locks the state directory when the run
//! keeps state ([`state_dir`]), binds the sockets and opens the descriptors
//! of its inputs, and prepares the workers and their queues; it
//! installs no signal handler, starts no task or thread, reads no input and
//! touches no global state. So a second engine can be built from a changed
//! config while the first runs; a build that fails leaves the running one
//! untouched. A reload (issue 13) will then swap them: trigger the old
//! engine's token, let its `run` return (its inputs stopped, its queues
//! drained, its followed files' positions saved in the state directory),
//! and run the new one, which resumes those files at the saved positions.
//! What cannot be built twice side by side must be carried over from the
//! running engine instead of built anew: a socket path the old engine still
//! serves is refused by the new one's bind (a live process serves it), the
//! state directory is locked by the old engine (the new one would wait for
//! it, then refuse: hand it [`Engine::state`] instead), and the wrapped
//! process is the old engine's. That carrying-over (Vector's
//! topology reload keeps unchanged components running) is the reload's work.
//!
//! **Counters.** Every internal event counts in its component's counters;
//! [`Engine::counters`] reads them live, and the [`Summary`] at the end.

pub mod events;
pub mod matching;
pub mod shutdown;
pub mod state_dir;
pub mod summary;
pub mod workers;

pub use shutdown::{Completion, Done, Shutdown};
pub use summary::{AlarmSummary, Counters, InputSummary, Summary};

use crate::config::{Config, ConfigError};
use crate::dispatch::outbox::Outbox;
use crate::dispatch::router::Router;
use crate::input::component::{self as inputs, Input, StartContext};
use crate::input::events::{InputStats, StdinFailed};
use crate::input::follow::commits::{Commits, Progress};
use crate::input::passthrough::{self, Passthrough};
use crate::input::{self, EVENT_QUEUE, Event, EventSender, child, fd, follow};
use crate::internal_event::InternalEvent;
use crate::plan::{self, Plan};
use crate::state::StateDir;
use events::{EndOfInput, Stopping, SupervisorFailed};
use nix::sys::signal::Signal;
use std::ffi::OsString;
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// What to run: plain inputs, or a process to wrap.
#[derive(Clone, Debug)]
pub enum Mode {
    /// Files and sockets from the config, or stdin when there are none.
    Inputs,
    /// `logalarm run -- CMD ARGS…`: the command and its arguments.
    Wrap(Vec<OsString>),
}

/// Why an engine could not be built.
#[derive(Debug)]
pub enum BuildError {
    /// The config does not hold together (every error found, each naming
    /// where it was written): logalarm exits 2.
    Config(Vec<ConfigError>),
    /// An input cannot start (a socket path taken, a descriptor missing);
    /// the message names it and the fix: logalarm exits 1.
    Input(String),
    /// The state directory is held by another logalarm for the whole
    /// `state_lock_wait`, and `state_busy` is `refuse`: logalarm exits 1
    /// (a service manager starts it again later).
    State(String),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::Config(errors) => {
                let texts: Vec<String> = errors.iter().map(ToString::to_string).collect();
                f.write_str(&texts.join("\n"))
            }
            BuildError::Input(e) | BuildError::State(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for BuildError {}

/// Signals that reach the process's own queue and not yet its supervisor,
/// at most: more are dropped, as the kernel merges pending signals.
const SIGNAL_QUEUE: usize = 16;

/// How long the inputs have to end (and clean up: a socket file is removed)
/// once told to stop.
const INPUTS_STOP: Duration = Duration::from_secs(2);

/// Passes signals to the process an engine wraps ([`Mode::Wrap`]): SIGTERM,
/// SIGINT and SIGHUP to its process group (and it is not restarted after
/// them), SIGUSR1 and SIGUSR2 to it alone.
#[derive(Clone, Debug)]
pub struct Forwarder(mpsc::Sender<Signal>);

impl Forwarder {
    /// Forwards `sig` to the wrapped process (to nothing once it has ended
    /// for good). Never waits: beyond a few signals not yet taken, more are
    /// dropped, as the kernel merges pending signals of one kind.
    pub fn forward(&self, sig: Signal) {
        let _ = self.0.try_send(sig);
    }
}

/// Every component of a run, built and not yet running.
pub struct Engine {
    mode: Mode,
    config: Config,
    plan: Plan,
    workers: workers::Prepared,
    /// The configured inputs, built (sockets bound), in start order.
    inputs: Vec<Box<dyn Input>>,
    fds: Vec<(fd::Watch, Vec<u32>)>,
    /// Indexes of the wrapped process's `on_exit` alarms.
    on_exit: Vec<u32>,
    events: EventSender,
    events_rx: mpsc::Receiver<Event>,
    /// Under [`Mode::Wrap`]: the queue of signals to forward.
    signals: Option<(mpsc::Sender<Signal>, mpsc::Receiver<Signal>)>,
    counters: Counters,
    /// The run's state directory, locked for the engine's life.
    state: Option<Arc<StateDir>>,
}

/// Indexes of the alarms named, in the plan (names were checked by the plan).
fn alarm_indexes<'a>(plan: &Plan, names: impl IntoIterator<Item = &'a str>) -> Vec<u32> {
    names
        .into_iter()
        .filter_map(|n| plan.alarms.iter().position(|a| &*a.name == n))
        .filter_map(|i| u32::try_from(i).ok())
        .collect()
}

impl Engine {
    /// Checks `config` and builds every component of a run of it: the plan
    /// (actions, matcher, rules; its warnings are logged), the inputs that
    /// can fail at start (sockets bound, `alarm-fd` descriptors opened), and
    /// the workers with their queues. Nothing runs and no global state is
    /// touched (see the module's doc): two engines can be built side by side.
    ///
    /// Call it within a tokio runtime: sockets and descriptors are registered
    /// with its reactor.
    ///
    /// When the run keeps state (followed files; a `state_dir` set), the
    /// state directory is locked here ([`state_dir`]): this waits up to
    /// `state_lock_wait` while another instance holds it. A second engine
    /// built beside a running one with the same state directory therefore
    /// waits and is refused; a reload hands the running engine's
    /// [`Engine::state`] over instead.
    ///
    /// # Errors
    /// [`BuildError::Config`] with every config error; [`BuildError::Input`]
    /// when a socket cannot be bound or a descriptor opened;
    /// [`BuildError::State`] when the state directory stays held by another
    /// logalarm.
    pub fn build(config: &Config, mode: Mode) -> Result<Engine, BuildError> {
        let wrap = matches!(mode, Mode::Wrap(_));
        let plan = plan::build(config, false, wrap).map_err(BuildError::Config)?;
        for w in config.warnings.iter().chain(&plan::warnings(&plan, config)) {
            tracing::warn!("{w}");
        }
        Self::from_plan(config, plan, mode)
    }

    /// [`Engine::build`] from a plan built from `config`.
    fn from_plan(config: &Config, mut plan: Plan, mode: Mode) -> Result<Engine, BuildError> {
        let state = state_dir::acquire(config).map_err(BuildError::State)?;
        let cx = inputs::BuildContext {
            follow: follow::FollowSettings {
                state: state.clone(),
                poll_interval: config.settings.poll_interval(),
                rotate_wait: config.settings.rotate_wait(),
                flush_timeout: config.settings.flush_timeout(),
            },
        };
        let built = inputs::build(&config.inputs, &cx).map_err(BuildError::Input)?;
        let mut fds: Vec<(fd::Watch, Vec<u32>)> = Vec::new();
        for def in &config.alarm_fds {
            let alarms = alarm_indexes(&plan, [def.alarm.as_str()]);
            // Lines on the same descriptor share one reader, as in uWSGI: two
            // readers would split its bytes between them.
            if let Some((watch, _)) = fds.iter_mut().find(|(w, _)| w.watches(def)) {
                watch.also(def, alarms);
                continue;
            }
            fds.push((fd::open(def).map_err(BuildError::Input)?, alarms));
        }
        let on_exit = alarm_indexes(&plan, config.run.on_exit.iter().map(|(n, _)| n.as_str()));
        let lanes: Vec<(Arc<str>, usize)> = plan
            .alarms
            .iter()
            .map(|a| (a.name.clone(), a.queue_size))
            .collect();
        let max = config.settings.outbox_max_bytes() as u64;
        // The outbox journals in the run's state directory when one is named
        // (`state_dir`, `$STATE_DIRECTORY`): a filter in a pipe that follows
        // no file does not start journaling to `~/.local/state` unasked.
        let outbox_dir = state
            .as_deref()
            .filter(|_| state_dir::named(config))
            .map(StateDir::path);
        let (outbox, restored) = match Outbox::open(&lanes, outbox_dir, max) {
            Ok(opened) => opened,
            Err(e) => {
                tracing::error!("{e}; alarm queues are kept in memory only");
                Outbox::open(&lanes, None, max).map_err(BuildError::Input)?
            }
        };
        let workers = workers::prepare(std::mem::take(&mut plan.alarms), outbox, &restored);
        let counters = Counters::new(workers.stats());
        for (watch, _) in &fds {
            counters.add_input(format!("alarm-fd {}", watch.what()), watch.stats());
        }
        let (events, events_rx) = mpsc::channel::<Event>(EVENT_QUEUE);
        let signals = matches!(mode, Mode::Wrap(_)).then(|| mpsc::channel(SIGNAL_QUEUE));
        Ok(Engine {
            mode,
            config: config.clone(),
            plan,
            workers,
            inputs: built,
            fds,
            on_exit,
            events,
            events_rx,
            signals,
            counters,
            state,
        })
    }

    /// The run's state directory, if it has one: locked by this engine for
    /// its life (until [`Engine::run`] returns), so a component that keeps
    /// state there (`<state_dir>/outbox/`) may write in it freely.
    pub fn state_dir(&self) -> Option<&Path> {
        self.state.as_deref().map(StateDir::path)
    }

    /// The locked state directory itself, to share: the lock is one for the
    /// whole run, whoever holds a handle.
    pub fn state(&self) -> Option<Arc<StateDir>> {
        self.state.clone()
    }

    /// A handle on this engine's live counters (valid after it has run too).
    pub fn counters(&self) -> Counters {
        self.counters.clone()
    }

    /// Under [`Mode::Wrap`], what passes signals on to the wrapped process;
    /// `None` otherwise.
    pub fn forwarder(&self) -> Option<Forwarder> {
        self.signals.as_ref().map(|(tx, _)| Forwarder(tx.clone()))
    }

    /// Runs until the inputs end or `shutdown` is triggered, then drains the
    /// alarm queues within the drain deadline and returns what the run did.
    /// Logs each alarm's totals (the exit summary) before returning.
    ///
    /// Call it on a multi-threaded tokio runtime: the matching thread and the
    /// stdin and follower threads hand their work to it.
    pub async fn run(self, shutdown: Shutdown) -> Summary {
        let Engine {
            mode,
            config,
            plan,
            workers,
            inputs: configured,
            fds,
            on_exit,
            events,
            events_rx,
            signals,
            counters,
            state,
        } = self;
        // The lock is the run's: held until every component is done with it.
        let _state = state;
        let (forward, mut forwarded_signals) = match signals {
            Some((tx, rx)) => (Some(Forwarder(tx)), Some(rx)),
            None => (None, None),
        };
        let mut failed = false;
        // The inputs' stop: the token, relayed (see `relay`), or the run's end.
        let (stop_inputs, stop_rx) = watch::channel(false);
        let stop_inputs = Arc::new(stop_inputs);
        tokio::spawn(relay(shutdown.clone(), stop_inputs.clone()));

        let lanes = workers.lanes();
        let (workers, routes) = workers.spawn();
        let rules = plan.rule_routes();
        let router = Router::new(
            routes,
            &rules,
            plan.watches(Instant::now()),
            config.settings.alarm_freq(),
            config.settings.msg_size(),
        )
        .with_records(&rules);

        // The matching thread runs before any input starts: the follower's
        // first pass may read (from = "beginning", saved positions), and is
        // awaited below.
        let progress = lanes
            .into_iter()
            .map(|lane| lane as Arc<dyn Progress>)
            .collect();
        let commits = Arc::new(Commits::new(progress));
        let matcher = plan.matcher;
        let thread_commits = commits.clone();
        let mut matching_done = Completion::new();
        let part = matching_done.done();
        let spawned = std::thread::Builder::new()
            .name("engine".into())
            .spawn(move || {
                let _part = part;
                matching::run(&matcher, router, events_rx, Some(&thread_commits));
            });
        if let Err(e) = spawned {
            tracing::error!("cannot start the engine thread: {e}");
            failed = true;
        }
        tokio::spawn(matching::ticker(events.downgrade()));

        // Tasks that clean up after themselves at stop (a socket file is
        // removed): each holds a part of `inputs`.
        let mut inputs = Completion::new();
        let mut finishes = Vec::new();
        let mut wrapped = None;
        let mut stdin_reader = None;
        // The pass-through writers, to be waited for at the end.
        let mut outputs: Vec<Passthrough> = Vec::new();
        // Under `logalarm run` signals go to the process, not to the token.
        let wrapping = matches!(mode, Mode::Wrap(_));
        // In order, each started once the one before has taken its first
        // look: files first, so that a line written after their first pass
        // is never taken for one that was there at start (from = "end").
        for input in configured {
            if failed {
                break;
            }
            let cx = StartContext {
                events: events.clone(),
                stop: stop_rx.clone(),
                commits: commits.clone(),
            };
            match input.start(cx).await {
                Ok(started) => {
                    for (name, stats) in started.stats {
                        counters.add_input(name, stats);
                    }
                    let part = inputs.done();
                    let stopped = started.stopped;
                    tokio::spawn(async move {
                        let _part = part;
                        stopped.await;
                    });
                    finishes.extend(started.finish);
                }
                Err(e) => {
                    tracing::error!("{e}");
                    failed = true;
                }
            }
        }
        if !failed {
            for (watch, alarms) in fds {
                let (part, events, stop) = (inputs.done(), events.clone(), stop_rx.clone());
                tokio::spawn(async move {
                    let _part = part;
                    fd::watch(watch, alarms, events, stop).await;
                });
            }
            match mode {
                Mode::Wrap(command) => {
                    let stats = Arc::new(InputStats::default());
                    counters.add_input("process".into(), stats.clone());
                    let options = passthrough_options(&config);
                    let made = Passthrough::stdout(options, stats.clone()).and_then(|stdout| {
                        Ok((stdout, Passthrough::stderr(options, stats.clone())?))
                    });
                    match made {
                        Ok((stdout, stderr)) => {
                            outputs.extend([stdout.clone(), stderr.clone()]);
                            let setup = child::Setup {
                                command,
                                run: config.run.clone(),
                                on_exit,
                                stdout,
                                stderr,
                                msg_size: config.settings.msg_size(),
                                child_pid: plan.child_pid.clone(),
                                signals: forwarded_signals.take(),
                                stats,
                            };
                            wrapped = Some(tokio::spawn(child::supervise(setup, events.clone())));
                        }
                        Err(e) => {
                            tracing::error!("cannot start pass-through: {e}");
                            failed = true;
                        }
                    }
                }
                Mode::Inputs if config.inputs.is_empty() => {
                    match start_stdin(&config, &events, &stop_rx, &counters) {
                        Ok((reader, stdout)) => {
                            stdin_reader = Some(reader);
                            outputs.push(stdout);
                        }
                        Err(e) => {
                            tracing::error!("cannot start the stdin thread: {e}");
                            failed = true;
                        }
                    }
                }
                Mode::Inputs => {}
            }
        }
        let stopper = matching::Stopper::new(&events);
        drop(events);

        let mut exit = None;
        let mut stopped_by = None;
        let mut matching_ended = false;
        if let Some(child) = wrapped {
            // The process ends the run; a triggered token stops it (SIGTERM,
            // as the signal a service manager sends), and it is not restarted.
            tokio::pin!(child);
            let mut forwarded = false;
            let joined = loop {
                tokio::select! {
                    joined = &mut child => break joined,
                    () = shutdown.triggered(), if !forwarded => {
                        forwarded = true;
                        stopped_by = shutdown.cause().map(str::to_owned);
                        if let Some(forward) = &forward {
                            forward.forward(Signal::SIGTERM);
                        }
                    }
                }
            };
            match joined {
                Ok(code) => exit = Some(code),
                Err(error) => {
                    SupervisorFailed { error: &error }.emit();
                    failed = true;
                }
            }
            stopper.stop().await;
        } else {
            let by_itself = tokio::select! {
                biased;
                () = shutdown.triggered() => false,
                // Once triggered, the token stops the inputs, which may end
                // the matching thread before this task is woken by the token
                // itself (a watch wakes its listeners one after another).
                () = matching_done.wait() => !shutdown.is_triggered(),
            };
            if by_itself {
                matching_ended = true;
                EndOfInput.emit();
            } else {
                // Inputs first: a line read after this note is never alarmed.
                stop_inputs.send_replace(true);
                stopped_by = shutdown.cause().map(str::to_owned);
                Stopping {
                    cause: stopped_by.as_deref().unwrap_or("shutdown"),
                }
                .emit();
                stopper.stop().await;
            }
        }
        stop_inputs.send_replace(true);
        if !matching_ended {
            matching_done.wait().await;
        }
        let _ = tokio::time::timeout(INPUTS_STOP, inputs.wait()).await;
        // A reader still blocked in read(2) is not waited for.
        if let Some(reader) = stdin_reader.filter(std::thread::JoinHandle::is_finished) {
            failed |= !reader.join().unwrap_or(false);
        }
        let drain_timeout = config.settings.drain_timeout();
        // Written on while the queues drain: neither waits for the other.
        tokio::join!(
            workers.drain(drain_timeout, shutdown.hurried()),
            finish_passthrough(
                &outputs,
                &shutdown,
                !wrapping && stopped_by.is_none(),
                config.settings.passthrough_full(),
                drain_timeout,
            )
        );
        for output in &outputs {
            output.report();
        }
        drop(outputs);
        for finish in finishes {
            finish.await;
        }
        Summary {
            alarms: counters.alarms(),
            inputs: counters.inputs(),
            failed,
            exit,
            stopped_by,
        }
    }
}

/// Stops the inputs when `shutdown` is triggered, even before the run has
/// started them all (a follower's first pass, a process starting); ends when
/// the run is over (every listener gone).
async fn relay(shutdown: Shutdown, stop_inputs: Arc<watch::Sender<bool>>) {
    tokio::select! {
        () = shutdown.triggered() => {
            stop_inputs.send_replace(true);
        }
        () = stop_inputs.closed() => {}
    }
}

/// The pass-through settings of `config`.
fn passthrough_options(config: &Config) -> passthrough::Options {
    passthrough::Options {
        enabled: config.settings.passthrough(),
        buffer: config.settings.passthrough_buffer(),
        full: config.settings.passthrough_full(),
    }
}

/// How often the end of a run looks whether pass-through is written.
const PASSTHROUGH_POLL: Duration = Duration::from_millis(5);

/// Waits for the pass-through `outputs` to be written, then gives up on what
/// is left (counted as dropped). When `until_stopped` (stdin ended, and the
/// token can still be triggered by a stop signal) in `block` mode, it waits as
/// long as the output's reader takes, until the token is triggered;
/// otherwise (`drop` mode, a run stopped by the token, or `logalarm run`,
/// whose signals go to the process) it waits up to `drain_timeout`. A second
/// stop signal ([`Shutdown::hurried`]) ends either wait at once, as it ends
/// the drain of the alarm queues.
async fn finish_passthrough(
    outputs: &[Passthrough],
    shutdown: &Shutdown,
    until_stopped: bool,
    full: passthrough::Full,
    drain_timeout: Duration,
) {
    let written = async {
        while outputs.iter().any(|o| o.unwritten() > 0) {
            tokio::time::sleep(PASSTHROUGH_POLL).await;
        }
    };
    let bounded = async {
        if until_stopped && full == passthrough::Full::Block {
            tokio::select! {
                () = written => {}
                () = shutdown.triggered() => {}
            }
        } else {
            let _ = tokio::time::timeout(drain_timeout, written).await;
        }
    };
    tokio::select! {
        () = bounded => {}
        () = shutdown.hurried() => {}
    }
    for output in outputs {
        output.abandon();
    }
}

/// Starts the thread reading stdin (it returns false when reading failed),
/// and stdout's pass-through writer, returned to be waited for at the end.
fn start_stdin(
    config: &Config,
    events: &EventSender,
    stop: &watch::Receiver<bool>,
    counters: &Counters,
) -> std::io::Result<(std::thread::JoinHandle<bool>, Passthrough)> {
    let stats = Arc::new(InputStats::default());
    counters.add_input("stdin".into(), stats.clone());
    let (events, stop) = (events.clone(), stop.clone());
    let out = Passthrough::stdout(passthrough_options(config), stats.clone())?;
    let ours = out.clone();
    let reader = std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || match input::stdin::run(out, &events, &stop) {
            Ok(()) => true,
            Err(error) => {
                StdinFailed {
                    stats: &stats,
                    error: &error,
                }
                .emit();
                false
            }
        })?;
    Ok((reader, ours))
}
