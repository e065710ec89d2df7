//! Rule unit tests: `logalarm test --expect CASES.toml`, as `promtool test
//! rules` and `vector test` keep alerting rules under test.
//!
//! A cases file lists input lines and the alarms expected for them:
//!
//! ```toml
//! config = "alarms.ini"          # optional: the config, relative to this file (-c wins)
//!
//! [[case]]
//! name = "a terrible alarm pages both"
//! lines = ["TERRIBLE ALARM the world exploded !!!"]   # or input = """…""", or log = "sample.log"
//! alarms = { console = 1, oncall = 1 }                # notifications per alarm
//!
//! [[case]]
//! name = "the listen queue line, word for word"
//! lines = ["ERROR uWSGI listen queue of socket 127.0.0.1:3031 (fd: 3) full !!! (101/100)"]
//! messages = { console = ["ERROR uWSGI listen queue of socket 127.0.0.1:3031 (fd: 3) full !!! (101/100)"] }
//! ```
//!
//! Each case runs on its own (no policy state carries over) through
//! [`super::test::collect`]: the matcher and every alarm's policies,
//! `alarm-freq` included, on the lines' own clock when they carry times,
//! exactly as `logalarm test` counts. An alarm named in neither `alarms` nor
//! `messages` is expected to send nothing. `messages` are the notifications'
//! messages as the action gets them: rendered by the alarm's `message`
//! template (or its kind's default wording), in order.

use super::plural;
use super::test::{Outcome, collect};
use crate::component::toml_doc::line_of;
use crate::component::{ConfigError, Origin};
use crate::plan::Plan;
use indexmap::IndexMap;
use logalarm_plugin_api::{Notification, push_escaped};
use serde::Deserialize;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDef {
    config: Option<PathBuf>,
    #[serde(default, rename = "case")]
    cases: Vec<toml::Spanned<CaseDef>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseDef {
    name: String,
    lines: Option<Vec<String>>,
    input: Option<String>,
    log: Option<PathBuf>,
    alarms: Option<IndexMap<String, u64>>,
    messages: Option<IndexMap<String, Vec<String>>>,
}

/// Where a case's input comes from.
enum Input {
    /// `lines` (each ended with `\n`) or `input`, as written.
    Text(Vec<u8>),
    /// `log`: a file, relative to the cases file.
    Log(PathBuf),
}

struct Case {
    name: String,
    /// Where it is written: `FILE:LINE: case[N]`.
    at: Origin,
    input: Input,
    alarms: IndexMap<String, u64>,
    messages: IndexMap<String, Vec<String>>,
}

/// A loaded cases file.
pub struct Cases {
    /// The config the file names (`config = "…"`), relative to the file.
    pub config: Option<PathBuf>,
    file: PathBuf,
    cases: Vec<Case>,
}

/// Whether every case held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// All cases held.
    Pass,
    /// At least one case did not.
    Fail,
}

impl Cases {
    /// Reads and checks a cases file.
    ///
    /// # Errors
    /// The file cannot be read, is not valid TOML, has an unknown key, or a
    /// case gives no input or more than one (`lines`, `input`, `log`),
    /// expects nothing (neither `alarms` nor `messages`), or gives an
    /// alarm's count in `alarms` that its `messages` contradict; each error
    /// names the file, the line and the case.
    pub fn load(path: &Path) -> Result<Cases, Vec<ConfigError>> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            vec![ConfigError::file(
                path,
                format!("cannot read the cases file: {e}"),
            )]
        })?;
        let def: FileDef = toml::from_str(&text).map_err(|e| {
            let message = e.message().trim_end();
            vec![match e.span() {
                Some(s) => ConfigError::line(path, line_of(&text, s.start), message),
                None => ConfigError::file(path, message),
            }]
        })?;
        let dir = path.parent().unwrap_or(Path::new(""));
        let mut errors = Vec::new();
        if def.cases.is_empty() {
            errors.push(ConfigError::file(
                path,
                "no cases; add one: [[case]] name = \"…\" lines = [\"…\"] alarms = { ALARM = 1 }",
            ));
        }
        let mut cases = Vec::new();
        for (i, spanned) in def.cases.into_iter().enumerate() {
            let at = Origin::Toml {
                file: path.to_owned(),
                line: line_of(&text, spanned.span().start),
                key: format!("case[{}]", i + 1),
            };
            let c = spanned.into_inner();
            let input = match (c.lines, c.input, c.log) {
                (Some(lines), None, None) => Input::Text(
                    lines
                        .iter()
                        .flat_map(|l| l.as_bytes().iter().chain(b"\n"))
                        .copied()
                        .collect(),
                ),
                (None, Some(input), None) => Input::Text(input.into_bytes()),
                (None, None, Some(log)) => Input::Log(dir.join(log)),
                _ => {
                    errors.push(ConfigError::at(&at, format!(
                            "case {:?} needs exactly one of `lines` (a list), `input` (a string) or `log` (a file)",
                            c.name
                        ),
                    ));
                    continue;
                }
            };
            if c.alarms.is_none() && c.messages.is_none() {
                errors.push(ConfigError::at(&at, format!(
                        "case {:?} expects nothing; give `alarms = {{ ALARM = N }}` (or `alarms = {{}}` for no alarm) or `messages = {{ ALARM = [\"…\"] }}`",
                        c.name
                    ),
                ));
                continue;
            }
            let (alarms, messages) = (c.alarms.unwrap_or_default(), c.messages.unwrap_or_default());
            for (name, list) in &messages {
                if let Some(&n) = alarms.get(name)
                    && n != list.len() as u64
                {
                    errors.push(ConfigError::at(&at, format!(
                            "case {:?}: alarms.{name} = {n} but messages.{name} lists {}; make them agree or drop one",
                            c.name,
                            list.len()
                        ),
                    ));
                }
            }
            cases.push(Case {
                name: c.name,
                at,
                input,
                alarms,
                messages,
            });
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Cases {
            config: def.config.map(|c| dir.join(c)),
            file: path.to_owned(),
            cases,
        })
    }

    /// Runs every case against `plan`, writing one line per case (and a diff
    /// for each case that fails) and a total to `out`.
    ///
    /// # Errors
    /// A case names an alarm the config does not define, or its `log`
    /// cannot be read (then no case runs); writing to `out` failed.
    pub fn run(&self, plan: &Plan, out: &mut impl Write) -> Result<Verdict, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let defined: Vec<&str> = plan.alarms.iter().map(|a| &*a.name).collect();
        for case in &self.cases {
            for name in case.alarms.keys().chain(case.messages.keys()) {
                if !defined.contains(&name.as_str()) {
                    errors.push(ConfigError::at(&case.at, format!(
                            "case {:?} expects alarm {name:?}, which the config does not define (defined: {})",
                            case.name,
                            if defined.is_empty() { "none".to_owned() } else { defined.join(", ") }
                        ),
                    ));
                }
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let write_error = |e: io::Error| {
            vec![ConfigError {
                origin: None,
                what: format!("writing the report to stdout failed: {e}"),
                fix: None,
            }]
        };
        let mut failed = 0;
        for (i, case) in self.cases.iter().enumerate() {
            let outcome = match &case.input {
                Input::Text(bytes) => collect(plan, &bytes[..]),
                Input::Log(path) => std::fs::File::open(path).and_then(|f| collect(plan, f)),
            };
            let outcome = outcome.map_err(|e| {
                vec![ConfigError::at(
                    &case.at,
                    format!("case {:?}: reading its input failed: {e}", case.name),
                )]
            })?;
            let problems = check(plan, case, &outcome);
            let verdict = if problems.is_empty() {
                "ok    "
            } else {
                "FAILED"
            };
            let lines = plural(outcome.lines, "line", "lines");
            writeln!(out, "{verdict}  case {}: {} ({lines})", i + 1, case.name)
                .map_err(write_error)?;
            if !problems.is_empty() {
                failed += 1;
                writeln!(out, "        at {}", case.at).map_err(write_error)?;
                for p in problems {
                    writeln!(out, "        {p}").map_err(write_error)?;
                }
            }
        }
        writeln!(
            out,
            "{}: {}, {} passed, {failed} failed",
            self.file.display(),
            plural(self.cases.len() as u64, "case", "cases"),
            self.cases.len() - failed
        )
        .and_then(|()| out.flush())
        .map_err(write_error)?;
        Ok(if failed == 0 {
            Verdict::Pass
        } else {
            Verdict::Fail
        })
    }
}

/// A notification's message as its action gets it, on one line (line breaks
/// escaped): rendered by the alarm's template or its kind's default wording.
fn delivered(template: Option<&logalarm_template::Template>, n: &Notification) -> String {
    let text = match template.or_else(|| logalarm_template::default_template(n.kind)) {
        Some(t) => match t.render(n) {
            Ok(text) => text.into_bytes(),
            Err(e) => format!("[the message template failed: {e}]").into_bytes(),
        },
        None => n.body().into_owned(),
    };
    let mut line = Vec::with_capacity(text.len());
    push_escaped(&mut line, &text);
    String::from_utf8_lossy(&line).into_owned()
}

/// What differs between `case` and `outcome`, one entry per line of report.
fn check(plan: &Plan, case: &Case, outcome: &Outcome) -> Vec<String> {
    let mut problems = Vec::new();
    for (i, alarm) in plan.alarms.iter().enumerate() {
        let name = &*alarm.name;
        let got = outcome.alarms.get(i).map_or(0, |c| c.notifications);
        let expected = case
            .alarms
            .get(name)
            .copied()
            .or_else(|| case.messages.get(name).map(|m| m.len() as u64))
            .unwrap_or(0);
        let notes = outcome.notes.get(i).map_or(&[][..], Vec::as_slice);
        let messages: Vec<String> = notes
            .iter()
            .map(|n| delivered(alarm.message.as_deref(), n))
            .collect();
        if let Some(want) = case.messages.get(name) {
            let want: Vec<String> = want
                .iter()
                .map(|m| {
                    let mut line = Vec::new();
                    push_escaped(&mut line, m.as_bytes());
                    String::from_utf8_lossy(&line).into_owned()
                })
                .collect();
            if want != messages {
                problems.push(format!(
                    "alarm {name}: messages differ (- expected, + sent; {} expected, {got} sent):",
                    want.len()
                ));
                let ops = similar::capture_diff_slices(similar::Algorithm::Myers, &want, &messages);
                for op in &ops {
                    for change in op.iter_changes(&want, &messages) {
                        let sign = match change.tag() {
                            similar::ChangeTag::Delete => '-',
                            similar::ChangeTag::Insert => '+',
                            similar::ChangeTag::Equal => ' ',
                        };
                        problems.push(format!("  {sign} {}", change.value()));
                    }
                }
                continue;
            }
        }
        if got != expected {
            problems.push(format!(
                "alarm {name}: expected {}, sent {got}",
                plural(expected, "notification", "notifications")
            ));
            for m in &messages {
                problems.push(format!("  + {m}"));
            }
        }
    }
    problems
}
