//! logalarm's own log: its tracing events, written by the plugin API's
//! [`logline`] as every other line logalarm writes itself, so that each
//! starts with the anti-loop tag and a time:
//! `[logalarm] 2026-12-04T17:40:00.123Z warn: alarm=x: message`, or with
//! `--log-format json` `{"tag":"[logalarm]","time":…,"level":"warn","alarm":"x","message":…}`.
//! Feeding logalarm's stderr back into its input can never fire an alarm.
//!
//! Levels: errors and warnings say something failed or was lost (a failed
//! delivery, a drop); info is the run's life (start, stop, summaries, a
//! rotated file); debug is routine detail, each successful delivery among it.

use logalarm_plugin_api::logline::{self, Level as LineLevel, LogFormat, Value};
use std::fmt;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};
use tracing_subscriber::util::SubscriberInitExt as _;

/// Writes each event as one [`logline`] line.
struct Lines;

/// An event's message and its other fields, in the order recorded.
#[derive(Default)]
struct Fields {
    message: String,
    fields: Vec<(&'static str, Value)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            self.fields.push((field.name(), Value::from(value)));
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.fields.push((field.name(), Value::Int(value.into())));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.fields.push((field.name(), Value::Int(value.into())));
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        self.fields.push((field.name(), Value::Int(value)));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.fields.push((field.name(), Value::Float(value)));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.fields.push((field.name(), Value::Bool(value)));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `%x` fields and the message arrive here; their Debug is their Display.
        if field.name() == "message" {
            use std::fmt::Write as _;
            let _ = write!(self.message, "{value:?}");
        } else {
            self.fields
                .push((field.name(), Value::Str(format!("{value:?}"))));
        }
    }
}

impl<S: Subscriber> Layer<S> for Lines {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let level = match *event.metadata().level() {
            Level::ERROR => LineLevel::Error,
            Level::WARN => LineLevel::Warn,
            Level::INFO => LineLevel::Info,
            Level::DEBUG => LineLevel::Debug,
            Level::TRACE => LineLevel::Trace,
        };
        logline::emit(level, None, &fields.fields, fields.message.as_bytes());
    }
}

/// Installs the logger: `verbosity` 0 = warnings and errors (`-q`), 1 = info
/// (the default), 2 and more = debug (`-v`). Lines are text until
/// [`set_format`] chooses.
pub fn init(verbosity: u8) {
    let level = match verbosity {
        0 => LevelFilter::WARN,
        1 => LevelFilter::INFO,
        _ => LevelFilter::DEBUG,
    };
    let _ = tracing_subscriber::registry()
        .with(level)
        .with(Lines)
        .try_init();
}

/// Chooses the format of logalarm's own log lines for the rest of the run;
/// called once, when the config is known (see [`logline::set_format`]). A
/// second call changes nothing.
pub fn set_format(format: LogFormat) {
    let _ = logline::set_format(format);
}
