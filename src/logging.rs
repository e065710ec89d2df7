//! logalarm's own log: every line on stderr starts with the anti-loop tag
//! (`[logalarm] LEVEL: key=value: message`), and line breaks inside a message
//! are escaped, so feeding logalarm's stderr back into its input can never fire
//! an alarm.

use logalarm_plugin_api::{TAG, push_escaped};
use std::fmt::{self, Write as _};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

struct Tagged;

/// Collects an event's message and its other fields separately.
#[derive(Default)]
struct Fields {
    message: String,
    context: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.context, "{}={value}: ", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.context, "{}={value:?}: ", field.name());
        }
    }
}

impl<S, N> FormatEvent<S, N> for Tagged
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut line = Vec::with_capacity(fields.context.len() + fields.message.len());
        push_escaped(&mut line, fields.context.as_bytes());
        push_escaped(&mut line, fields.message.as_bytes());
        let level = event.metadata().level().as_str().to_ascii_lowercase();
        writeln!(writer, "{TAG}] {level}: {}", String::from_utf8_lossy(&line))
    }
}

/// Installs the logger: `verbosity` 0 = warnings and errors, 1 = info
/// (default), 2 and more = debug.
pub fn init(verbosity: u8) {
    let level = match verbosity {
        0 => Level::WARN,
        1 => Level::INFO,
        _ => Level::DEBUG,
    };
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .event_format(Tagged)
        .try_init();
}
