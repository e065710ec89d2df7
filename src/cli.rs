//! The command line: `logalarm [OPTIONS]`, `logalarm run -- CMD`,
//! `logalarm completions SHELL`, `logalarm man [SUBCOMMAND]`,
//! `logalarm check`, `logalarm test`.
//!
//! Alarm and rule options carry uWSGI's names (`--alarm`, `--log-alarm`,
//! `--alarm-log`, `--not-log-alarm`, `--not-alarm-log`, `--alarm-freq`,
//! `--alarm-msg-size`) and add to the config file's, in command-line order.

use crate::config::args::{self, CliEntry};
use crate::config::{self, Config, ConfigError, syntax};
use crate::engine::Mode;
use crate::plan::{self, Plan};
use crate::{logging, report, run};
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use logalarm_plugin_api::{Level, LogFormat, emit_tagged};
use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit code for a config or usage error, before any input is read.
const EXIT_CONFIG: u8 = 2;

#[derive(Parser, Debug)]
#[command(
    name = "logalarm",
    version,
    about = "Fire alarms on log lines: uWSGI's alarm subsystem as its own program",
    long_about = "Reads lines (stdin, followed files, a unix socket, or a wrapped process), passes stdin on to \
                  stdout unchanged, and fires the alarms whose rules match.\n\
                  Examples: myapp 2>&1 | logalarm -c alarms.ini\n          \
                  logalarm -c alarms.toml --follow '/var/log/app/*.log'\n          \
                  logalarm run -c alarms.toml -- myapp --port 80",
    subcommand_precedence_over_arg = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    opts: Opts,
    /// More of logalarm's own log: -v adds debug lines, such as each successful
    /// delivery (by default: info and above, i.e. start, stop, summaries,
    /// failures and drops).
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Only warnings and errors in logalarm's own log (failures and drops; no
    /// summaries).
    #[arg(short = 'q', long = "quiet", global = true)]
    quiet: bool,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Validate the config and print its alarms and its rules -> alarms table.
    Check {
        #[command(flatten)]
        opts: Opts,
        /// Check the config as `logalarm run` uses it (a `signal:` action may then
        /// have no target: it goes to the wrapped process).
        #[arg(long = "run")]
        run: bool,
    },
    /// Wrap a process: read its stdout and stderr (passed through unchanged), forward
    /// SIGTERM/SIGINT/SIGHUP/SIGUSR1/SIGUSR2 to it, fire on-exit alarms when it crashes,
    /// and exit with its exit code (128+N when signal N killed it).
    Run {
        #[command(flatten)]
        opts: Opts,
        /// The command and its arguments, after `--`.
        #[arg(last = true, required = true, value_name = "CMD")]
        command: Vec<OsString>,
    },
    /// Dry run, as fail2ban-regex: the lines read, matched, ignored and missed, per rule and
    /// per alarm, with what the alarm policies (alarm-freq included) decided; runs no action.
    ///
    /// `logalarm test -c alarms.ini app.log` replays a log through a config.
    /// `logalarm test app.log REGEX [IGNOREREGEX]` tries a regex without any config (its alarm
    /// is named `regex`; IGNOREREGEX is a not-log-alarm before it). `logalarm test --expect
    /// CASES.toml` runs rule unit tests: exit 0 when every case holds, 1 with a diff when one
    /// does not, 2 on a config or cases-file error.
    Test {
        #[command(flatten)]
        opts: Opts,
        /// The log to read: a file, or `-` (or nothing) for stdin.
        #[arg(value_name = "LOG")]
        logfile: Option<PathBuf>,
        /// An ad-hoc rule: lines matching REGEX fire the alarm `regex` (as `fail2ban-regex LOG
        /// REGEX`).
        #[arg(value_name = "REGEX")]
        regex: Option<String>,
        /// With REGEX: lines matching IGNOREREGEX are ignored (a not-log-alarm before REGEX).
        #[arg(value_name = "IGNOREREGEX", requires = "regex")]
        ignoreregex: Option<String>,
        /// List every line a rule matched, with its alarms and their policies' decisions.
        #[arg(long = "print-all-matched")]
        print_all_matched: bool,
        /// List every line no rule matched.
        #[arg(long = "print-all-missed")]
        print_all_missed: bool,
        /// List every line a rule matched that fires nothing: anti-loop tag or not-log-alarm.
        #[arg(long = "print-all-ignored")]
        print_all_ignored: bool,
        /// Rule unit tests: run the cases of this TOML file (its input lines and the alarms
        /// expected for them) against the config; see README, "Rule unit tests".
        #[arg(long = "expect", value_name = "CASES.toml", conflicts_with_all = ["logfile", "regex"])]
        expect: Option<PathBuf>,
    },
    /// Print a shell completion script: `logalarm completions bash > /etc/bash_completion.d/logalarm`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), generated from these definitions: `logalarm man | man -l -`;
    /// `logalarm man test` prints logalarm-test(1).
    Man {
        /// A subcommand whose page to print (check, run, test, completions).
        #[arg(value_name = "SUBCOMMAND")]
        page: Option<String>,
    },
}

#[derive(Args, Debug)]
struct Opts {
    /// Config file: uWSGI INI (*.ini, [uwsgi] or [logalarm] section) or TOML (*.toml).
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    config: Option<PathBuf>,
    /// The uWSGI-style options (`--alarm`, `--log-alarm`, `--follow`, …),
    /// in command-line order.
    #[command(flatten)]
    options: OptionArgs,
    /// Do not copy stdin to stdout.
    #[arg(long = "no-passthrough")]
    no_passthrough: bool,
    /// The global settings' flags (`--alarm-freq`, `--queue-size`, …).
    #[command(flatten)]
    settings: SettingArgs,
}

/// The global settings' flags, made from the one settings table
/// ([`config::settings::SETTINGS`]), as (INI option, value) pairs.
#[derive(Clone, Debug, Default)]
struct SettingArgs(Vec<(&'static str, String)>);

impl FromArgMatches for SettingArgs {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let set = config::settings::SETTINGS.iter().filter_map(|s| {
            let value = matches.get_one::<String>(s.cli?)?;
            Some((s.ini, value.clone()))
        });
        Ok(SettingArgs(set.collect()))
    }
    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl Args for SettingArgs {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        config::settings::SETTINGS.iter().fold(cmd, |cmd, s| {
            let Some(flag) = s.cli else { return cmd };
            let check = s.check;
            cmd.arg(
                clap::Arg::new(flag)
                    .long(flag)
                    .value_name(s.value_name)
                    .help(s.summary())
                    // Checked here as it will be parsed, so a bad value is a usage error.
                    .value_parser(move |v: &str| check(v).map(|()| v.to_owned())),
            )
        })
    }
    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

impl SettingArgs {
    /// `--log-format`, if given and valid.
    fn log_format(&self) -> Option<LogFormat> {
        let (_, v) = self.0.iter().find(|(o, _)| *o == "log-format")?;
        syntax::log_format(v).ok()
    }
}

/// The options of the one uWSGI-style table ([`Config::options`]) as
/// command-line flags, kept in the order written.
#[derive(Clone, Debug, Default)]
struct OptionArgs(Vec<CliEntry>);

impl FromArgMatches for OptionArgs {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut all: Vec<(usize, CliEntry)> = Vec::new();
        for option in Config::options() {
            if let (Some(indices), Some(values)) = (
                matches.indices_of(option.name),
                matches.get_many::<String>(option.name),
            ) {
                all.extend(indices.zip(values).map(|(i, v)| {
                    let entry = CliEntry {
                        option: option.name,
                        value: v.clone(),
                    };
                    (i, entry)
                }));
            }
        }
        all.sort_by_key(|(i, _)| *i);
        Ok(OptionArgs(all.into_iter().map(|(_, e)| e).collect()))
    }
    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl Args for OptionArgs {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        Config::options().into_iter().fold(cmd, |cmd, o| {
            let mut arg = clap::Arg::new(o.name)
                .long(o.name)
                .value_name(o.value_name)
                .help(o.help)
                .action(clap::ArgAction::Append);
            for alias in o.aliases {
                arg = arg.visible_alias(*alias);
            }
            if let Some(bare) = o.bare {
                arg = arg.num_args(0..=1).default_missing_value(bare);
            }
            cmd.arg(arg)
        })
    }
    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

fn report_errors(errors: &[ConfigError]) -> ExitCode {
    for e in errors {
        // A multi-line message (a regex error with its caret) becomes several tagged lines.
        let text = e.to_string();
        let mut lines = text.lines();
        if let Some(first) = lines.next() {
            emit_tagged(Level::Error, "config error", first.as_bytes());
        }
        for more in lines {
            emit_tagged(
                Level::Error,
                "config error",
                format!("    {more}").as_bytes(),
            );
        }
        // The line as written in the file, to see at once what is meant.
        // Its action redacted as `check` shows it: an alarm line may hold a password.
        if let Some((number, line)) = e.source_line() {
            let line = crate::report::redact::source_line(&line);
            emit_tagged(
                Level::Error,
                "config error",
                format!("{number:>6} | {line}").as_bytes(),
            );
        }
    }
    ExitCode::from(EXIT_CONFIG)
}

/// What a load adds to the command line: entries after the given ones (an
/// ad-hoc `test` regex), and the config file to read when none is given
/// (the one a cases file names).
#[derive(Default)]
struct Extra {
    entries: Vec<CliEntry>,
    config: Option<PathBuf>,
}

/// Loads the config file and adds the command line; `given` holds the
/// options written before a subcommand and those after it, in that order.
/// The config's own errors are in it, reported when it is planned.
fn load(given: &[&Opts], extra: Extra) -> Result<Config, Vec<ConfigError>> {
    let mut files: Vec<&PathBuf> = given.iter().filter_map(|o| o.config.as_ref()).collect();
    if files.is_empty() {
        files.extend(extra.config.as_ref());
    }
    let mut config = match files.as_slice() {
        [] => Config::default(),
        [path] => config::load_file(path),
        _ => {
            logging::set_format(
                given
                    .iter()
                    .filter_map(|o| o.settings.log_format())
                    .next_back()
                    .unwrap_or_default(),
            );
            let twice = crate::component::Origin::Cli {
                flag: "--config".into(),
                nth: 2,
            };
            return Err(vec![ConfigError::new(
                &twice,
                "logalarm reads one config file",
                "give -c/--config once",
            )]);
        }
    };
    for opts in given {
        config.extend(args::load(&opts.options.0));
        let mut errors = Vec::new();
        for (option, value) in &opts.settings.0 {
            let origin = crate::component::Origin::Cli {
                flag: format!("--{option}"),
                nth: 1,
            };
            if let Err(e) = config.settings.set_flag(option, value, &origin) {
                errors.push(e);
            }
        }
        if opts.no_passthrough {
            config.settings.passthrough = Some(false);
        }
        if !errors.is_empty() {
            return Err(errors);
        }
    }
    config.extend(args::load(&extra.entries));
    // Before anything is logged about the config (its errors, its warnings).
    logging::set_format(config.settings.log_format.unwrap_or_default());
    Ok(config)
}

/// Checks `config` and builds its plan for `check` and `test` (the main job
/// builds its engine instead), logging its warnings.
fn plan_of(config: &Config, for_report: bool, wrap: bool) -> Result<Plan, Vec<ConfigError>> {
    let plan = plan::build(config, for_report, wrap)?;
    for w in config.warnings.iter().chain(&plan::warnings(&plan, config)) {
        tracing::warn!("{w}");
    }
    Ok(plan)
}

/// The main job over `config`; its config errors are reported here.
fn main_job(config: &Config, mode: Mode) -> ExitCode {
    match run::main(config, mode) {
        Ok(code) => code,
        Err(errors) => report_errors(&errors),
    }
}

/// The alarm an ad-hoc `logalarm test LOG REGEX` fires.
const ADHOC_ALARM: &str = "regex";

/// `logalarm test LOG REGEX [IGNOREREGEX]` as config entries: an alarm named
/// [`ADHOC_ALARM`], IGNOREREGEX as a not-log-alarm, then REGEX.
fn adhoc_entries(regex: &str, ignore: Option<&str>) -> Vec<CliEntry> {
    let mut entries = vec![CliEntry {
        option: "alarm",
        value: format!("{ADHOC_ALARM} log:"),
    }];
    if let Some(ignore) = ignore {
        entries.push(CliEntry {
            option: "not-log-alarm",
            value: format!("{ADHOC_ALARM} {ignore}"),
        });
    }
    entries.push(CliEntry {
        option: "log-alarm",
        value: format!("{ADHOC_ALARM} {regex}"),
    });
    entries
}

fn test(plan: &Plan, logfile: Option<&PathBuf>, list: report::test::Listing) -> io::Result<()> {
    let input: Box<dyn Read> = match logfile {
        Some(path) if path.as_os_str() != "-" => Box::new(
            File::open(path)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?,
        ),
        _ => Box::new(io::stdin().lock()),
    };
    let out = io::BufWriter::new(io::stdout().lock());
    report::test::run(plan, input, out, list).map(|_| ())
}

/// `logalarm completions SHELL` and `logalarm man [SUBCOMMAND]`.
fn generate(command: &Command) -> ExitCode {
    let mut cli = Cli::command();
    let mut out = io::stdout().lock();
    let written = match command {
        Command::Completions { shell } => {
            clap_complete::generate(*shell, &mut cli, "logalarm", &mut out);
            Ok(())
        }
        Command::Man { page } => {
            let page = match page {
                None => cli,
                Some(name) => match cli.find_subcommand(name) {
                    Some(sub) => {
                        let title = format!("logalarm-{}", sub.get_name());
                        sub.clone().name(title)
                    }
                    None => {
                        let known: Vec<&str> =
                            cli.get_subcommands().map(|s| s.get_name()).collect();
                        tracing::error!(
                            "man: no subcommand {name:?}; the pages are logalarm and logalarm-{}",
                            known.join(", logalarm-")
                        );
                        return ExitCode::from(EXIT_CONFIG);
                    }
                },
            };
            clap_mangen::Man::new(page).render(&mut out)
        }
        _ => Ok(()),
    };
    match written.and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("writing to stdout failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Parses the command line and runs the command; returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // Options may come before a subcommand, after it, or both.
    let mut given = vec![&cli.opts];
    if let Some(
        Command::Check { opts, .. } | Command::Test { opts, .. } | Command::Run { opts, .. },
    ) = &cli.command
    {
        given.push(opts);
    }
    logging::init(if cli.quiet { 0 } else { 1 + cli.verbose });
    // The command line's format at once, for what is logged before the
    // config is read (a cases file's errors); it wins over the config's.
    if let Some(format) = given
        .iter()
        .filter_map(|o| o.settings.log_format())
        .next_back()
    {
        logging::set_format(format);
    }
    if let Some(command @ (Command::Completions { .. } | Command::Man { .. })) = &cli.command {
        return generate(command);
    }
    let for_report = matches!(cli.command, Some(Command::Test { .. }));
    let wrap = matches!(
        cli.command,
        Some(Command::Run { .. } | Command::Check { run: true, .. })
    );
    let mut extra = Extra::default();
    let mut cases = None;
    match &cli.command {
        Some(Command::Test {
            regex: Some(regex),
            ignoreregex,
            ..
        }) => {
            // Named as the user wrote them, not as the rules they become.
            let errors: Vec<ConfigError> = [
                ("REGEX", Some(regex)),
                ("IGNOREREGEX", ignoreregex.as_ref()),
            ]
            .into_iter()
            .filter_map(|(what, re)| {
                let e = crate::matcher::compile::parse(re?).err()?;
                let at = crate::component::Origin::Arg {
                    name: format!("test {what}"),
                };
                Some(ConfigError::at(&at, format!("bad regex:\n{e}")))
            })
            .collect();
            if !errors.is_empty() {
                return report_errors(&errors);
            }
            extra.entries = adhoc_entries(regex, ignoreregex.as_deref());
        }
        Some(Command::Test {
            expect: Some(path), ..
        }) => match report::expect::Cases::load(path) {
            Ok(loaded) => {
                extra.config = loaded.config.clone();
                cases = Some(loaded);
            }
            Err(errors) => return report_errors(&errors),
        },
        _ => {}
    }
    let config = match load(&given, extra) {
        Ok(loaded) => loaded,
        Err(errors) => return report_errors(&errors),
    };
    // The main job builds its engine (the plan with it); check and test the plan alone.
    match &cli.command {
        None => return main_job(&config, Mode::Inputs),
        Some(Command::Run { command, .. }) => {
            return main_job(&config, Mode::Wrap(command.clone()));
        }
        _ => {}
    }
    let plan = match plan_of(&config, for_report, wrap) {
        Ok(plan) => plan,
        Err(errors) => return report_errors(&errors),
    };
    match &cli.command {
        // Run above.
        None | Some(Command::Run { .. }) => ExitCode::SUCCESS,
        Some(Command::Check { .. }) => {
            match report::check(&plan, &config, &mut io::stdout().lock()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("writing the report failed: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Some(Command::Test {
            logfile,
            print_all_matched,
            print_all_missed,
            print_all_ignored,
            ..
        }) => {
            if let Some(cases) = cases {
                return match cases.run(&plan, &mut io::stdout().lock()) {
                    Ok(report::expect::Verdict::Pass) => ExitCode::SUCCESS,
                    Ok(report::expect::Verdict::Fail) => ExitCode::FAILURE,
                    Err(errors) => report_errors(&errors),
                };
            }
            let list = report::test::Listing {
                matched: *print_all_matched,
                missed: *print_all_missed,
                ignored: *print_all_ignored,
            };
            match test(&plan, logfile.as_ref(), list) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e}");
                    ExitCode::FAILURE
                }
            }
        }
        Some(Command::Completions { .. } | Command::Man { .. }) => ExitCode::SUCCESS,
    }
}
