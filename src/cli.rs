//! The command line: `logalarm [OPTIONS]`, `logalarm check`, `logalarm test`.
//!
//! Alarm and rule options carry uWSGI's names (`--alarm`, `--log-alarm`,
//! `--alarm-log`, `--not-log-alarm`, `--not-alarm-log`, `--alarm-freq`,
//! `--alarm-msg-size`) and add to the config file's, in command-line order.

use crate::config::args::{self, CliEntry};
use crate::config::{self, Config, ConfigError, Settings, syntax};
use crate::plan::{self, Plan};
use crate::{logging, report, run};
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use logalarm_plugin_api::emit_tagged;
use std::fs::File;
use std::io::{self, Read};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Exit code for a config or usage error, before any input is read.
const EXIT_CONFIG: u8 = 2;

#[derive(Parser, Debug)]
#[command(
    name = "logalarm",
    version,
    about = "Fire alarms on log lines: uWSGI's alarm subsystem as its own program",
    long_about = "Reads lines on stdin, writes them on to stdout unchanged, and fires the alarms whose rules match.\n\
                  Example: myapp 2>&1 | logalarm -c alarms.ini",
    subcommand_precedence_over_arg = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    opts: Opts,
    /// More log output (-v info is the default; -vv debug).
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Only warnings and errors in logalarm's own log.
    #[arg(short = 'q', long = "quiet", global = true)]
    quiet: bool,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Validate the config and print its alarms and its rules -> alarms table.
    Check {
        #[command(flatten)]
        opts: Opts,
    },
    /// Dry run: print the lines that would fire alarms, and matches per rule; runs no action.
    Test {
        #[command(flatten)]
        opts: Opts,
        /// The log to read (stdin when absent).
        logfile: Option<PathBuf>,
    },
}

#[derive(Args, Debug)]
struct Opts {
    /// Config file: uWSGI INI (*.ini, [uwsgi] or [logalarm] section) or TOML (*.toml).
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Define an alarm (uWSGI --alarm), e.g. 'mailme cmd:mail -s alarm admin@example.com'.
    #[arg(long = "alarm", value_name = "NAME PLUGIN:ARGS")]
    alarm: Vec<String>,
    /// Fire alarms on lines matching REGEX (uWSGI --log-alarm).
    #[arg(long = "log-alarm", value_name = "ALARM[,ALARM…] REGEX")]
    log_alarm: Vec<String>,
    /// Same as --log-alarm.
    #[arg(long = "alarm-log", value_name = "ALARM[,ALARM…] REGEX")]
    alarm_log: Vec<String>,
    /// Negative rule: a matching line skips the rules after this one (uWSGI --not-log-alarm).
    #[arg(long = "not-log-alarm", value_name = "ALARM[,ALARM…] REGEX")]
    not_log_alarm: Vec<String>,
    /// Same as --not-log-alarm.
    #[arg(long = "not-alarm-log", value_name = "ALARM[,ALARM…] REGEX")]
    not_alarm_log: Vec<String>,
    /// Drop a message identical to the alarm's last one within this period; 0 = off [default: 3].
    #[arg(long = "alarm-freq", value_name = "SECONDS", value_parser = syntax::duration)]
    alarm_freq: Option<Duration>,
    /// Longest message an alarm carries, in bytes; longer lines are cut and marked [default: 8192].
    #[arg(long = "alarm-msg-size", value_name = "BYTES", value_parser = syntax::size)]
    alarm_msg_size: Option<usize>,
    /// Do not copy stdin to stdout.
    #[arg(long = "no-passthrough")]
    no_passthrough: bool,
    /// Notifications queued per alarm before new ones are dropped (and counted) [default: 1024].
    #[arg(long = "queue-size", value_name = "N", value_parser = syntax::size)]
    queue_size: Option<usize>,
    /// Time allowed at end of input to deliver queued notifications [default: 10s].
    #[arg(long = "drain-timeout", value_name = "DURATION", value_parser = syntax::duration)]
    drain_timeout: Option<Duration>,
}

/// The alarm and rule options, by clap id, with their uWSGI names.
const ORDERED: [(&str, &str); 5] = [
    ("alarm", "alarm"),
    ("log_alarm", "log-alarm"),
    ("alarm_log", "alarm-log"),
    ("not_log_alarm", "not-log-alarm"),
    ("not_alarm_log", "not-alarm-log"),
];

/// The alarm and rule options in the order they were written.
fn ordered_entries(matches: &ArgMatches) -> Vec<CliEntry> {
    let mut all: Vec<(usize, CliEntry)> = Vec::new();
    for (id, option) in ORDERED {
        if let (Some(indices), Some(values)) =
            (matches.indices_of(id), matches.get_many::<String>(id))
        {
            all.extend(indices.zip(values).map(|(i, v)| {
                (
                    i,
                    CliEntry {
                        option,
                        value: v.clone(),
                    },
                )
            }));
        }
    }
    all.sort_by_key(|(i, _)| *i);
    all.into_iter().map(|(_, e)| e).collect()
}

fn report_errors(errors: &[ConfigError]) -> ExitCode {
    for e in errors {
        // A multi-line message (a regex error with its caret) becomes several tagged lines.
        let text = e.to_string();
        let mut lines = text.lines();
        if let Some(first) = lines.next() {
            emit_tagged("config error", first.as_bytes());
        }
        for more in lines {
            emit_tagged("config error", format!("    {more}").as_bytes());
        }
    }
    ExitCode::from(EXIT_CONFIG)
}

/// Loads the file (if any), adds the command line, and builds the plan.
/// Loads the config file and adds the command line; `given` holds the options
/// written before a subcommand and those after it, in that order.
fn load(
    given: &[(&Opts, &ArgMatches)],
    for_report: bool,
) -> Result<(Config, Plan), Vec<ConfigError>> {
    let files: Vec<&PathBuf> = given
        .iter()
        .filter_map(|(o, _)| o.config.as_ref())
        .collect();
    let mut config = match files.as_slice() {
        [] => Config::default(),
        [path] => config::load_file(path),
        _ => {
            return Err(vec![ConfigError {
                at: "command line".into(),
                message: "-c/--config is given twice; logalarm reads one config file".into(),
            }]);
        }
    };
    for (opts, matches) in given {
        config.extend(args::load(&ordered_entries(matches)));
        config.settings.override_with(&Settings {
            alarm_freq: opts.alarm_freq,
            msg_size: opts.alarm_msg_size,
            passthrough: opts.no_passthrough.then_some(false),
            queue_size: opts.queue_size,
            drain_timeout: opts.drain_timeout,
        });
    }
    let plan = plan::build(&config, for_report)?;
    for w in config.warnings.iter().chain(&plan::warnings(&plan)) {
        tracing::warn!("{w}");
    }
    Ok((config, plan))
}

fn test(plan: &Plan, logfile: Option<&PathBuf>) -> io::Result<()> {
    use crate::input::reader::{LineReader, MAX_LINE};
    let input: Box<dyn Read> = match logfile {
        Some(path) => Box::new(
            File::open(path)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?,
        ),
        None => Box::new(io::stdin().lock()),
    };
    let mut reader = LineReader::new(input, MAX_LINE);
    let mut scanner = plan.matcher.scanner(true);
    let mut sink = report::TestReport::new(plan, io::BufWriter::new(io::stdout().lock()));
    while let Some(block) = reader.next_block()? {
        scanner.scan(block.lines, &mut sink);
    }
    sink.finish(scanner.lines(), scanner.stats())
}

/// Parses the command line and runs the command; returns the process exit code.
pub fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    // Options may come before a subcommand, after it, or both.
    let mut given = vec![(&cli.opts, &matches)];
    if let (Some(Command::Check { opts } | Command::Test { opts, .. }), Some((_, sub))) =
        (&cli.command, matches.subcommand())
    {
        given.push((opts, sub));
    }
    logging::init(if cli.quiet { 0 } else { 1 + cli.verbose });
    let for_report = matches!(cli.command, Some(Command::Test { .. }));
    let (config, plan) = match load(&given, for_report) {
        Ok(loaded) => loaded,
        Err(errors) => return report_errors(&errors),
    };
    match &cli.command {
        None => run::stdin(&config, plan),
        Some(Command::Check { .. }) => {
            match report::check(&plan, &config, &mut io::stdout().lock()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("writing the report failed: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Some(Command::Test { logfile, .. }) => match test(&plan, logfile.as_ref()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!("{e}");
                ExitCode::FAILURE
            }
        },
    }
}
