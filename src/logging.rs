//! logalarm's own log: every line on stderr starts with the anti-loop tag
//! (`[logalarm] LEVEL: …`), and line breaks inside a message are escaped, so
//! feeding logalarm's stderr back into its input can never fire an alarm.

use logalarm_plugin_api::{TAG, push_escaped};
use std::fmt;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

struct Tagged;

impl<S, N> FormatEvent<S, N> for Tagged
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let mut fields = FormattedFields::<N>::new(String::new());
        ctx.format_fields(fields.as_writer(), event)?;
        let mut escaped = Vec::with_capacity(fields.fields.len());
        push_escaped(&mut escaped, fields.fields.as_bytes());
        let level = event.metadata().level().as_str().to_ascii_lowercase();
        writeln!(writer, "{TAG}] {level}: {}", String::from_utf8_lossy(&escaped))
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
