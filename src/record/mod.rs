//! Multiline records: a rule that takes continuation lines into one event, so
//! that a traceback is one alarm whose message is the whole traceback.
//!
//! ```toml
//! [[rule]]
//! regex = "Error|Exception"   # matched against the whole record
//! alarms = ["crash"]
//! multiline = "python"        # or "java", "go", "ruby", or a table:
//! # multiline = { start = "^BEGIN", continue = '^\s', end = "^END",
//! #               max_lines = 500, max_bytes = 65536, timeout = "500ms" }
//! # multiline = { preset = "java", max_lines = 200 }
//! ```
//!
//! # Semantics
//!
//! - A record opens at a line matching `start`: the preset's, or the table's;
//!   a table without `start` (and without `preset`) opens at the rule's own
//!   regex. In the line matcher the rule's pattern *is* its `start` regex.
//!   When several multiline rules match a line, the first in rule order opens
//!   the record; a matching negative rule before it stops it, as for any rule.
//! - The lines that follow **from the same input** (the same
//!   [`Source`](logalarm_plugin_api::Source): one file, one stream socket
//!   client, the wrapped process's stderr) are taken while they are part of
//!   it: a line matching `end` is taken and closes the record (`end` is
//!   checked first); a line matching `continue` is taken; any other line
//!   closes the record and is then matched as its own line. Records of
//!   different inputs never mix.
//! - The lines taken (not the opening line) are not matched against any rule:
//!   they are part of the event. The opening line is matched against the
//!   other rules as usual.
//! - When the record closes, the rule fires each of its alarms once, with the
//!   record's lines joined by `\n` (no trailing `\n`) as the message — if the
//!   rule's regex matches the whole record (`^` and `$` are the record's start
//!   and end; write `(?m)` for lines). For a table without `start` the regex
//!   opened the record, so it always fires. A multiline rule never fires on
//!   single lines.
//! - Caps: `max_lines` (default [`DEFAULT_MAX_LINES`]) and `max_bytes`
//!   (default [`DEFAULT_MAX_BYTES`]). A record that would grow beyond either
//!   is cut there and fires at once, its message ending in a line
//!   `[logalarm: record cut at N lines]` (or `… N bytes`, the last line then
//!   cut at a character boundary). The rest of it is still taken (and
//!   dropped) until it ends, so that its lines do not fire as single lines.
//!   `max_bytes`, not `alarm-msg-size`, caps a record's message (the marker
//!   line comes on top).
//! - A record is also closed when its input has sent no line for `timeout`
//!   (default [`DEFAULT_TIMEOUT`]; checked on the engine's 100 ms tick), when
//!   its input ends (a wrapped process's output at EOF, a stream client gone,
//!   a followed file rotated away, truncated or no longer followed) and at
//!   shutdown. `logalarm test` reads a whole log at once: there records close
//!   by their lines, their caps and at the end of the log.
//! - An input is what its [`Source`](logalarm_plugin_api::Source) tells
//!   apart. A datagram socket is one input for all its senders, and a stream
//!   socket's clients are told apart by their credentials (pid, uid): records
//!   of two programs logging tracebacks to one datagram socket at the same
//!   time can mix, and so can those of two connections of one process (use a
//!   stream socket, one connection per program).
//! - INI has no form for `multiline` (uWSGI's `log-alarm` value has no room).
//!
//! # Presets
//!
//! Anchored on what the runtimes print (see [`PRESETS`]):
//!
//! - `python`: from `Traceback (most recent call last):` (and the
//!   `  + Exception Group Traceback …` of Python 3.11) through the indented
//!   frame, code and `^^^` marker lines to the exception line (`ValueError:
//!   msg`, `KeyboardInterrupt`). Chained exceptions ("During handling of the
//!   above exception…") make one record per traceback: each has its own
//!   exception line. An exception group's record ends at the next unindented
//!   line, or on the timeout. A multi-line exception message or an exception
//!   note (`add_note`) is not indented: its lines after the first are not
//!   part of the record.
//! - `java`: from a qualified exception line (`java.lang.IllegalStateException:
//!   msg`, `com.foo.BarError`, optionally after `Exception in thread "main" `)
//!   through `at …` frames, `... N more` (and logback's `... N common frames
//!   omitted`), `Caused by: …` and `Suppressed: …`.
//! - `go`: from `panic: ` or `fatal error: ` through empty lines, `goroutine N
//!   […]:` headers, function lines, tab-indented file lines, `created by …`,
//!   `[signal …]`, `runtime stack:`, to `exit status N` (printed by `go run`;
//!   a compiled binary's panic ends at its next other line or on the timeout).
//! - `ruby`: from `file.rb:3:in 'foo': message (RuntimeError)` (both the
//!   `` `foo' `` quoting of Ruby before 3.4 and the `'foo'` of 3.4) through
//!   `from file.rb:7:in …` lines (also numbered, `2: from …`) and
//!   `... N levels...`.

pub mod assembler;
pub mod config;

use crate::component::range::Count;
use crate::matcher::compile;
use config::MultilineDef;
use regex_automata::meta::Regex;
use std::fmt;
use std::time::Duration;

/// Default most lines in a record.
pub const DEFAULT_MAX_LINES: usize = 500;
/// Default most bytes in a record's message.
pub const DEFAULT_MAX_BYTES: usize = 65536;
/// Default time a record waits for its next line before it is closed.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(500);
/// `max_lines`: 1 to 1,000,000 lines in one record.
pub const MAX_LINES: Count = Count::new(1, 1_000_000, "lines");
/// `max_bytes`: 1 byte to 16 MiB in one record's message, the longest line
/// the inputs keep whole.
pub const MAX_BYTES: Count = Count::new(1, crate::input::reader::MAX_LINE as u64, "bytes");

/// A preset: what a runtime prints for an uncaught exception (or a panic).
#[derive(Clone, Copy, Debug)]
pub struct Preset {
    /// Its name, as written in `multiline = "NAME"`.
    pub name: &'static str,
    /// The first line of a record.
    pub start: &'static str,
    /// The lines that continue it.
    pub continue_: &'static str,
    /// The line that ends it (and belongs to it), if the runtime prints one.
    pub end: Option<&'static str>,
}

/// The presets, by name.
pub const PRESETS: [Preset; 4] = [
    Preset {
        name: "python",
        start: r"^(\s*\+ Exception Group )?Traceback \(most recent call last\):",
        // Frames, code, `^^^`/`~~~` markers, exception-group `|` and `+-` lines.
        continue_: r"^[ \t]",
        // The exception line: a (qualified) name, then `:` and the message, or nothing.
        end: Some(r"^[A-Za-z_][A-Za-z0-9_.]*(:|$)"),
    },
    Preset {
        name: "java",
        start: r#"^(Exception in thread "[^"]*" )?([A-Za-z_$][\w$]*\.)+[A-Za-z_$][\w$]*(Exception|Error|Throwable)(:|$)"#,
        continue_: r"^(\s+at |\s+\.\.\. \d+ (more|common frames omitted)|\s*Caused by: |\s*Suppressed: )",
        end: None,
    },
    Preset {
        name: "go",
        start: r"^(panic: |fatal error: )",
        continue_: r"^($|\s|goroutine \d+ |created by |\[signal |runtime stack:|\.\.\.additional frames elided\.\.\.|\S+\(.*\)$)",
        end: Some(r"^exit status \d+$"),
    },
    Preset {
        name: "ruby",
        start: r"^\S[^:]*:\d+:in [`'][^']*': ",
        continue_: r"^\s+((\d+: )?from |\.\.\. \d+ levels\.\.\.)",
        end: None,
    },
];

/// The names of the presets, for error messages.
fn preset_names() -> String {
    PRESETS
        .iter()
        .map(|p| format!("\"{}\"", p.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A compiled regex with its text (for reports).
#[derive(Debug)]
pub struct Pattern {
    /// The regex as written.
    pub text: String,
    /// Compiled with the rules' syntax and byte semantics.
    pub regex: Regex,
}

impl Pattern {
    /// Compiles `text`; `what` names it in errors (`` `continue` regex ``).
    fn compile(text: &str, what: &str) -> Result<Pattern, String> {
        let hir = compile::parse(text).map_err(|e| format!("bad {what}:\n{e}"))?;
        let regex = compile::single(&hir).map_err(|e| format!("{what}: {e}"))?;
        Ok(Pattern {
            text: text.to_owned(),
            regex,
        })
    }

    /// Whether `line` matches.
    #[inline]
    pub fn is_match(&self, line: &[u8]) -> bool {
        self.regex.is_match(line)
    }
}

/// A rule's multiline spec, checked and compiled.
#[derive(Debug)]
pub struct Spec {
    /// The preset it came from, if any.
    pub preset: Option<&'static str>,
    /// The regex that opens a record: the rule's pattern in the line matcher.
    pub start: String,
    /// The lines that continue a record.
    pub continue_: Option<Pattern>,
    /// The line that ends a record.
    pub end: Option<Pattern>,
    /// The rule's regex, matched against a whole record; `None` when it is the
    /// `start` regex itself (the record then always fires).
    pub check: Option<Pattern>,
    /// Most lines in a record.
    pub max_lines: usize,
    /// Most bytes in a record's message (the cut marker comes on top).
    pub max_bytes: usize,
    /// A record with no new line from its input for this long is closed.
    pub timeout: Duration,
}

impl Spec {
    /// Checks and compiles `def`, the `multiline` key of a rule whose regex is
    /// `rule_regex`.
    ///
    /// # Errors
    /// An unknown preset (with the list of presets), a bad regex (the parser's
    /// message, naming the key), a zero cap or timeout, or a table that says
    /// nothing about which lines continue a record.
    pub fn compile(def: &MultilineDef, rule_regex: &str) -> Result<Spec, String> {
        let preset = match &def.preset {
            None => None,
            Some(name) => Some(PRESETS.iter().find(|p| p.name == name).ok_or_else(|| {
                format!(
                    "unknown multiline preset {name:?}; the presets are {} (or write a table: {{ start = \"…\", continue = \"…\", end = \"…\" }})",
                    preset_names()
                )
            })?),
        };
        let start = def.start.as_deref().or(preset.map(|p| p.start));
        let continue_ = def.continue_.as_deref().or(preset.map(|p| p.continue_));
        let end = def.end.as_deref().or(preset.and_then(|p| p.end));
        if continue_.is_none() && end.is_none() {
            return Err(
                "says neither which lines continue a record nor which ends it; add continue = \"REGEX\" and/or end = \"REGEX\", or name a preset"
                    .into(),
            );
        }
        for (key, value, range) in [
            ("max_lines", def.max_lines, MAX_LINES),
            ("max_bytes", def.max_bytes, MAX_BYTES),
        ] {
            match value {
                Some(0) => return Err(format!("`{key}` must be at least 1")),
                Some(n) => {
                    range.check(n).map_err(|e| format!("`{key}`: {e}"))?;
                }
                None => {}
            }
        }
        if def.timeout == Some(Duration::ZERO) {
            return Err("`timeout` must be more than 0, e.g. timeout = \"500ms\"".into());
        }
        let (start, check) = match start {
            Some(start) => {
                Pattern::compile(start, "`start` regex")?;
                (
                    start.to_owned(),
                    Some(Pattern::compile(rule_regex, "rule regex")?),
                )
            }
            None => (rule_regex.to_owned(), None),
        };
        Ok(Spec {
            preset: preset.map(|p| p.name),
            start,
            continue_: continue_
                .map(|c| Pattern::compile(c, "`continue` regex"))
                .transpose()?,
            end: end
                .map(|e| Pattern::compile(e, "`end` regex"))
                .transpose()?,
            check,
            max_lines: def.max_lines.unwrap_or(DEFAULT_MAX_LINES),
            max_bytes: def.max_bytes.unwrap_or(DEFAULT_MAX_BYTES),
            timeout: def.timeout.unwrap_or(DEFAULT_TIMEOUT),
        })
    }

    /// What opens, continues and ends a record, for reports: `python`, or
    /// `custom`.
    pub fn kind(&self) -> &'static str {
        self.preset.unwrap_or("custom")
    }
}

impl fmt::Display for Spec {
    /// `python: start /…/, continue /…/, end /…/; at most 500 lines, 65536
    /// bytes; closed 500ms after its last line`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: start /{}/", self.kind(), self.start)?;
        if let Some(c) = &self.continue_ {
            write!(f, ", continue /{}/", c.text)?;
        }
        if let Some(e) = &self.end {
            write!(f, ", end /{}/", e.text)?;
        }
        write!(
            f,
            "; at most {} lines, {} bytes; closed {} after its last line",
            self.max_lines,
            self.max_bytes,
            humantime::format_duration(self.timeout)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::component::Origin;

    fn def(preset: &str) -> MultilineDef {
        MultilineDef {
            preset: Some(preset.into()),
            ..MultilineDef::new(Origin::Cli {
                flag: "x".into(),
                nth: 1,
            })
        }
    }

    fn spec(preset: &str) -> Spec {
        Spec::compile(&def(preset), "Error|Exception|panic").unwrap()
    }

    fn start(s: &Spec, line: &str) -> bool {
        Pattern::compile(&s.start, "start")
            .unwrap()
            .is_match(line.as_bytes())
    }
    fn cont(s: &Spec, line: &str) -> bool {
        s.continue_
            .as_ref()
            .is_some_and(|c| c.is_match(line.as_bytes()))
    }
    fn end(s: &Spec, line: &str) -> bool {
        s.end.as_ref().is_some_and(|e| e.is_match(line.as_bytes()))
    }

    #[test]
    fn python_preset() {
        let s = spec("python");
        assert!(start(&s, "Traceback (most recent call last):"));
        assert!(start(
            &s,
            "  + Exception Group Traceback (most recent call last):"
        ));
        assert!(!start(&s, "During handling of the above exception"));
        for line in [
            "  File \"/tmp/x.py\", line 3, in <module>",
            "    1/0",
            "    ~^~",
            "  | ExceptionGroup: eg (2 sub-exceptions)",
            "  +-+---------------- 1 ----------------",
            "\tindented by a tab",
        ] {
            assert!(cont(&s, line), "{line}");
        }
        for line in [
            "ZeroDivisionError: division by zero",
            "KeyboardInterrupt",
            "json.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0)",
            "__main__.Boom: x",
        ] {
            assert!(end(&s, line), "{line}");
            assert!(!cont(&s, line), "{line}");
        }
        assert!(!end(&s, "2024-05-01 12:00:00 INFO next"));
        assert!(!end(&s, ""));
    }

    #[test]
    fn java_preset() {
        let s = spec("java");
        for line in [
            "Exception in thread \"main\" java.lang.IllegalStateException: boom",
            "java.lang.NullPointerException",
            "com.example.app.BillingException: card declined",
            "org.foo.Outer$InnerError: x",
            "Exception in thread \"pool-1-thread-2\" java.lang.StackOverflowError",
        ] {
            assert!(start(&s, line), "{line}");
        }
        assert!(!start(&s, "Exception: not qualified"));
        assert!(!start(&s, "INFO java.lang.String is fine"));
        for line in [
            "\tat com.example.App.main(App.java:12)",
            "    at java.base/java.lang.Thread.run(Thread.java:833)",
            "\t... 5 more",
            "\t... 12 common frames omitted",
            "Caused by: java.io.IOException: disk full",
            "\tSuppressed: java.lang.RuntimeException: close failed",
            "\t\tCaused by: java.lang.Error: deeper",
        ] {
            assert!(cont(&s, line), "{line}");
        }
        assert!(!cont(&s, "2024-05-01 INFO next"));
        assert!(s.end.is_none());
    }

    #[test]
    fn go_preset() {
        let s = spec("go");
        assert!(start(
            &s,
            "panic: runtime error: index out of range [5] with length 3"
        ));
        assert!(start(
            &s,
            "fatal error: all goroutines are asleep - deadlock!"
        ));
        for line in [
            "",
            "goroutine 1 [running]:",
            "main.main()",
            "\t/tmp/x/main.go:8 +0x1d",
            "main.(*Server).handle(0xc000010000, {0x4b3e20, 0xc000012018})",
            "created by main.main in goroutine 1",
            "[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x47b8f6]",
            "runtime stack:",
        ] {
            assert!(cont(&s, line), "{line:?}");
        }
        assert!(end(&s, "exit status 2"));
        assert!(!cont(&s, "2024/05/01 12:00:00 listening on :8080"));
    }

    #[test]
    fn ruby_preset() {
        let s = spec("ruby");
        assert!(start(&s, "t.rb:3:in 'foo': boom (RuntimeError)"));
        assert!(start(&s, "t.rb:3:in `foo': boom (RuntimeError)"));
        assert!(start(
            &s,
            "/app/lib/x.rb:12:in 'Billing#charge': declined (Billing::Error)"
        ));
        assert!(!start(&s, "I, [2024-05-01] INFO -- : started"));
        for line in [
            "\tfrom t.rb:7:in 'bar'",
            "\tfrom t.rb:10:in `<main>'",
            "\t2: from t.rb:10:in `<main>'",
            "\t ... 5 levels...",
        ] {
            assert!(cont(&s, line), "{line}");
        }
    }

    #[test]
    fn errors_name_the_fix() {
        let e = Spec::compile(&def("perl"), "x").unwrap_err();
        assert!(
            e.starts_with("unknown multiline preset \"perl\"; the presets are \"python\", \"java\", \"go\", \"ruby\""),
            "{e}"
        );
        let mut d = def("python");
        d.preset = None;
        d.start = Some("^BEGIN".into());
        let e = Spec::compile(&d, "x").unwrap_err();
        assert!(e.contains("add continue = \"REGEX\""), "{e}");
        d.continue_ = Some("^(\\s".into());
        let e = Spec::compile(&d, "x").unwrap_err();
        assert!(e.starts_with("bad `continue` regex:"), "{e}");
        d.continue_ = Some("^\\s".into());
        d.max_lines = Some(0);
        assert_eq!(
            Spec::compile(&d, "x").unwrap_err(),
            "`max_lines` must be at least 1"
        );
        d.max_lines = None;
        // No start: the rule's regex opens the record and needs no check.
        d.start = None;
        let s = Spec::compile(&d, "^BEGIN").unwrap();
        assert_eq!((s.start.as_str(), s.check.is_none()), ("^BEGIN", true));
        assert_eq!(s.kind(), "custom");
        // A preset with overrides.
        let mut d = def("java");
        d.max_lines = Some(200);
        let s = Spec::compile(&d, "Exception").unwrap();
        assert_eq!((s.kind(), s.max_lines, s.max_bytes), ("java", 200, 65536));
    }
}
