//! The config of `alarm-fd` watches: uWSGI's `alarm-fd = NAME FD[:SIZE]
//! MESSAGE` (INI and `--alarm-fd`), TOML `[[alarm_fd]]`.

use crate::component::de::NumberOrString;
use crate::component::range::Count;
use crate::component::syntax;
use crate::component::toml_doc::{Reader, Schema};
use crate::component::{ConfigError, OptionDoc, Origin};
use serde::Deserialize;
use toml::Spanned;
use toml::de::DeValue;

/// The keys of an `[[alarm_fd]]` table.
pub static TABLE: Schema = Schema {
    what: "an [[alarm_fd]]",
    keys: &[
        ("alarm", None),
        ("fd", None),
        ("size", None),
        ("message", None),
    ],
};

/// The INI option and command-line flag.
pub static OPTION: OptionDoc = OptionDoc::new(
    "alarm-fd",
    "ALARM FD[:SIZE] MESSAGE",
    "Fire ALARM each time FD (a path or a descriptor number) has SIZE bytes to read (uWSGI --alarm-fd)",
);

/// uWSGI's `alarm-fd = NAME FD[:SIZE] MESSAGE`: fire an alarm each time a
/// descriptor or FIFO has `size` bytes to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlarmFdDef {
    /// The alarm to fire.
    pub alarm: String,
    /// A path (a FIFO or a character device) or an inherited descriptor number.
    pub fd: String,
    /// Bytes read per event (uWSGI's `:SIZE`, default 1).
    pub size: usize,
    /// The alarm's message.
    pub message: String,
    /// Where it was configured.
    pub origin: Origin,
}

/// `SIZE`: 1 byte to 1 MiB read per firing. The reader allocates a buffer
/// of that size up front; uWSGI's uses are 1 byte (a FIFO poke) and 8 (an
/// eventfd counter such as a cgroup's OOM notification).
pub const SIZE: Count = Count::new(1, 1 << 20, "bytes");

/// Parses uWSGI's `alarm-fd` value, `NAME FD[:SIZE] MESSAGE`.
///
/// # Errors
/// A message with the expected form.
pub fn alarm_fd_value(value: &str, origin: &Origin) -> Result<AlarmFdDef, String> {
    let form = "write `alarm-fd = NAME PATH[:SIZE] MESSAGE`, e.g. `alarm-fd = oom /run/oom.fifo:8 OUT OF MEMORY`";
    let mut parts = value.trim().splitn(3, char::is_whitespace);
    let (Some(alarm), Some(fd), Some(message)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(format!("{value:?} is not `NAME FD[:SIZE] MESSAGE`; {form}"));
    };
    let (fd, size) = match fd.rsplit_once(':') {
        Some((fd, size)) if size.bytes().all(|b| b.is_ascii_digit()) => {
            let size = syntax::size(size)?;
            if size == 0 {
                return Err(format!(
                    "the read size after `:` must be at least 1; {form}"
                ));
            }
            let size = SIZE.check(size).map_err(|e| format!("SIZE {e}"))?;
            (fd, size)
        }
        _ => (fd, 1),
    };
    Ok(AlarmFdDef {
        alarm: alarm.to_owned(),
        fd: fd.to_owned(),
        size,
        message: message.trim().to_owned(),
        origin: origin.clone(),
    })
}

/// `[[alarm_fd]]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    alarm: String,
    fd: NumberOrString,
    #[serde(default = "one")]
    size: usize,
    message: String,
}

fn one() -> usize {
    1
}

/// Reads one `[[alarm_fd]]` table (`path` is `alarm_fd[N]`); `None`, with the
/// error given to `reader` or pushed to `errors`, when it is wrong.
pub fn from_toml(
    reader: &mut Reader<'_>,
    path: &str,
    value: Spanned<DeValue<'_>>,
    errors: &mut Vec<ConfigError>,
) -> Option<AlarmFdDef> {
    let at = reader.origin(value.span().start, path.to_owned());
    let fd: Table = reader.table(path, value, &TABLE)?;
    if fd.size == 0 {
        errors.push(ConfigError::at(
            &at,
            "size must be at least 1 (bytes read per event)",
        ));
        return None;
    }
    if let Err(e) = SIZE.check(fd.size) {
        errors.push(ConfigError::at(&at, format!("size {e}")));
        return None;
    }
    Some(AlarmFdDef {
        alarm: fd.alarm,
        fd: match fd.fd {
            NumberOrString::Number(n) => n.to_string(),
            NumberOrString::String(s) => s,
        },
        size: fd.size,
        message: fd.message,
        origin: at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> Origin {
        Origin::Cli {
            flag: "--alarm-fd".into(),
            nth: 1,
        }
    }

    #[test]
    fn the_schema_names_the_fields_of_the_table() {
        let fields = crate::component::toml_doc::fields::<Table>();
        assert_eq!(TABLE.names(), fields);
    }

    #[test]
    fn alarm_fd_syntax() {
        let d = alarm_fd_value("oom /run/oom.fifo:8 OUT OF MEMORY !!!", &at()).unwrap();
        assert_eq!(
            (d.alarm.as_str(), d.fd.as_str(), d.size, d.message.as_str()),
            ("oom", "/run/oom.fifo", 8, "OUT OF MEMORY !!!")
        );
        let d = alarm_fd_value("x 3 ready", &at()).unwrap();
        assert_eq!((d.fd.as_str(), d.size), ("3", 1));
        assert!(alarm_fd_value("x /run/f", &at()).is_err());
        assert!(alarm_fd_value("x /run/f:0 msg", &at()).is_err());
    }
}
