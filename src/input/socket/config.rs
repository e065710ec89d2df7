//! The config of unix socket inputs: TOML `[[input]] socket = PATH`, `type`,
//! `mode`, `allow_uids`, `idle_timeout`, `max_per_uid`; INI options and flags
//! `socket = PATH` (datagram), `socket-stream = PATH`, `socket-mode = 0660`,
//! `socket-allow-uid = UID`, `socket-idle-timeout = 60s`,
//! `socket-max-per-uid = 64`.

use crate::component::de::{NumberOrString, Period};
use crate::component::syntax;
use crate::component::toml_doc::{Reader, Schema};
use crate::component::{ConfigError, OptionDoc, Origin};
use crate::input::component::{
    self, BuildContext, Input, InputConfig, Kind, SourceFilter, StartContext, Started, Task,
};
use logalarm_plugin_api::Source;
use serde::Deserialize;
use std::any::Any;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use toml::Spanned;
use toml::de::DeValue;

/// Unix sockets as an input kind.
pub static KIND: Kind = Kind {
    key: "socket",
    table: Schema {
        what: "a socket [[input]]",
        keys: &[
            ("socket", None),
            ("type", None),
            ("mode", None),
            ("allow_uids", None),
            ("idle_timeout", None),
            ("max_per_uid", None),
        ],
    },
    from_toml,
    build,
    options: &[
        OptionDoc::new(
            "socket",
            "PATH",
            "Listen on a unix datagram socket (syslog's /dev/log kind; repeatable)",
        ),
        OptionDoc::new(
            "socket-stream",
            "PATH",
            "Listen on a unix stream socket: newline-delimited lines (repeatable)",
        ),
        OptionDoc::new(
            "socket-mode",
            "MODE",
            "Permission bits of the socket files, in octal [default: 0660]",
        ),
        OptionDoc::new(
            "socket-allow-uid",
            "UID",
            "Accept stream clients of this user id only (repeatable; SO_PEERCRED)",
        ),
        OptionDoc::new(
            "socket-idle-timeout",
            "DURATION",
            "Close a stream client that sent nothing for this long; 0 = never [default: 60s]",
        ),
        OptionDoc::new(
            "socket-max-per-uid",
            "N",
            "Stream clients served at once per user id (SO_PEERCRED); more are refused [default: 64]",
        ),
    ],
    add_option,
};

/// Default mode of a socket input's file: owner and group may connect.
pub const DEFAULT_SOCKET_MODE: u32 = 0o660;

/// How long a stream client may send nothing before it is disconnected, by
/// default (60 s).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// The longest `idle_timeout` accepted (7 days).
pub const MAX_IDLE_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 3600);
/// Stream clients served at once per user id, by default.
pub const DEFAULT_MAX_PER_UID: usize = 64;

/// The kind of a unix socket input.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SocketKind {
    /// `SOCK_DGRAM`: one datagram is one message (syslog's `/dev/log` convention).
    #[default]
    Dgram,
    /// `SOCK_STREAM`: newline-delimited lines, many clients at once.
    Stream,
}

/// A unix socket to listen on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SocketConfig {
    /// The socket's path.
    pub path: PathBuf,
    /// Datagram or stream.
    pub kind: SocketKind,
    /// Permission bits of the socket file (`0660` by default).
    pub mode: u32,
    /// Stream clients allowed, by user id (`SO_PEERCRED`); empty: everyone
    /// the file mode lets connect.
    pub allow_uids: Vec<u32>,
    /// Stream only: a client that sent nothing for this long is disconnected;
    /// zero: never. `None`: [`DEFAULT_IDLE_TIMEOUT`].
    pub idle_timeout: Option<Duration>,
    /// Stream only: clients served at once per user id (`SO_PEERCRED`); more
    /// are refused. `None`: [`DEFAULT_MAX_PER_UID`].
    pub max_per_uid: Option<usize>,
    /// Where it was configured.
    pub origin: Origin,
}

/// Parses a socket mode written in octal (`660`, `0660`, `0o660`).
///
/// # Errors
/// Not an octal number, or bits beyond `0777`.
pub fn mode_value(value: &str) -> Result<u32, String> {
    let digits = value.trim().trim_start_matches("0o");
    match u32::from_str_radix(digits, 8) {
        Ok(mode) if mode <= 0o777 => Ok(mode),
        _ => Err(format!(
            "{value:?} is not a file mode; write octal permission bits, e.g. \"0660\""
        )),
    }
}

impl SocketConfig {
    /// The idle timeout in force (`None`: clients are never closed for it).
    pub fn idle_timeout(&self) -> Option<Duration> {
        Some(self.idle_timeout.unwrap_or(DEFAULT_IDLE_TIMEOUT)).filter(|t| !t.is_zero())
    }

    /// The per-uid client limit in force.
    pub fn max_per_uid(&self) -> usize {
        self.max_per_uid.unwrap_or(DEFAULT_MAX_PER_UID)
    }
}

/// Checks an `idle_timeout`: at most [`MAX_IDLE_TIMEOUT`] (0 turns it off).
///
/// # Errors
/// A longer period.
pub fn idle_timeout_value(period: Duration) -> Result<Duration, String> {
    if period > MAX_IDLE_TIMEOUT {
        Err(format!(
            "an idle timeout of {} is longer than the most allowed (7 days); write 0 to never close idle clients",
            humantime::format_duration(period)
        ))
    } else {
        Ok(period)
    }
}

/// Checks a `max_per_uid`: from 1 to [`super::stream::MAX_CLIENTS`].
///
/// # Errors
/// 0, or more than the clients a socket serves at once.
pub fn max_per_uid_value(n: usize) -> Result<usize, String> {
    let most = super::stream::MAX_CLIENTS;
    if n == 0 || n > most {
        Err(format!(
            "max_per_uid {n} is out of range; write 1 to {most} (clients served at once per user id)"
        ))
    } else {
        Ok(n)
    }
}

/// `[[input]] socket = …` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    socket: String,
    #[serde(rename = "type")]
    kind: Option<String>,
    mode: Option<NumberOrString>,
    allow_uids: Option<Vec<u32>>,
    idle_timeout: Option<Period>,
    max_per_uid: Option<usize>,
}

fn checked(t: Table, origin: &Origin) -> Result<SocketConfig, String> {
    let kind = match t.kind.as_deref() {
        None | Some("dgram" | "datagram") => SocketKind::Dgram,
        Some("stream") => SocketKind::Stream,
        Some(other) => {
            return Err(format!(
                "type {other:?} is not a socket type; write \"dgram\" or \"stream\""
            ));
        }
    };
    let mode = match t.mode {
        None => DEFAULT_SOCKET_MODE,
        Some(NumberOrString::String(s)) => mode_value(&s)?,
        Some(NumberOrString::Number(n)) => u32::try_from(n)
            .ok()
            .filter(|&m| m <= 0o777)
            .ok_or_else(|| {
                format!(
                    "mode {n} is beyond 0o777; write it in octal, e.g. mode = 0o660 or \"0660\""
                )
            })?,
    };
    if t.socket.trim().is_empty() {
        return Err("`socket` needs a path, e.g. socket = \"/run/logalarm.sock\"".into());
    }
    if kind == SocketKind::Dgram && (t.idle_timeout.is_some() || t.max_per_uid.is_some()) {
        return Err(
            "idle_timeout and max_per_uid apply to stream sockets only (a datagram socket has no connections); make it type = \"stream\", or remove them"
                .into(),
        );
    }
    Ok(SocketConfig {
        path: PathBuf::from(t.socket),
        kind,
        mode,
        allow_uids: t.allow_uids.unwrap_or_default(),
        idle_timeout: t
            .idle_timeout
            .map(|p| idle_timeout_value(p.0))
            .transpose()?,
        max_per_uid: t.max_per_uid.map(max_per_uid_value).transpose()?,
        origin: origin.clone(),
    })
}

fn from_toml(
    reader: &mut Reader<'_>,
    path: &str,
    table: Spanned<DeValue<'_>>,
    errors: &mut Vec<ConfigError>,
) -> Option<Box<dyn InputConfig>> {
    let origin = reader.origin(table.span().start, path.to_owned());
    let t: Table = reader.value(path, table)?;
    match checked(t, &origin) {
        Ok(socket) => Some(Box::new(socket)),
        Err(e) => {
            errors.push(ConfigError::at(&origin, e));
            None
        }
    }
}

/// Binds each socket: a path taken fails the build, before anything runs.
fn build(configs: &[&dyn InputConfig], _: &BuildContext) -> Result<Vec<Box<dyn Input>>, String> {
    configs
        .iter()
        .filter_map(|c| c.as_any().downcast_ref::<SocketConfig>())
        .map(|c| super::bind(c).map(|l| Box::new(l) as Box<dyn Input>))
        .collect()
}

impl Input for super::Listener {
    fn start(self: Box<Self>, cx: StartContext) -> Task<Result<Started, String>> {
        let stats = vec![(format!("socket {}", self.path().display()), self.stats())];
        let stopped: Task<()> = Box::pin(super::serve(*self, cx.events, cx.stop));
        Box::pin(async move {
            Ok(Started {
                stats,
                stopped,
                finish: None,
            })
        })
    }
}

fn add_option(
    inputs: &mut Vec<Box<dyn InputConfig>>,
    option: &str,
    value: &str,
    origin: &Origin,
) -> Result<bool, String> {
    match option {
        "socket" | "socket-stream" => inputs.push(Box::new(SocketConfig {
            path: PathBuf::from(component::nonempty(value, "a socket path")?),
            kind: if option == "socket" {
                SocketKind::Dgram
            } else {
                SocketKind::Stream
            },
            mode: DEFAULT_SOCKET_MODE,
            allow_uids: Vec::new(),
            idle_timeout: None,
            max_per_uid: None,
            origin: origin.clone(),
        })),
        "socket-mode" => {
            let m = mode_value(value)?;
            for socket in component::of_kind::<SocketConfig>(inputs) {
                socket.mode = m;
            }
        }
        "socket-allow-uid" => {
            let uid: u32 = value
                .trim()
                .parse()
                .map_err(|_| format!("{value:?} is not a user id; write a number, e.g. 1000"))?;
            for socket in component::of_kind::<SocketConfig>(inputs) {
                socket.allow_uids.push(uid);
            }
        }
        // Stream sockets only: a datagram socket has no connections.
        "socket-idle-timeout" => {
            let t = syntax::duration(value).and_then(idle_timeout_value)?;
            for socket in component::of_kind::<SocketConfig>(inputs) {
                if socket.kind == SocketKind::Stream {
                    socket.idle_timeout = Some(t);
                }
            }
        }
        "socket-max-per-uid" => {
            let n = syntax::size(value).and_then(max_per_uid_value)?;
            for socket in component::of_kind::<SocketConfig>(inputs) {
                if socket.kind == SocketKind::Stream {
                    socket.max_per_uid = Some(n);
                }
            }
        }
        _ => return Ok(false),
    }
    Ok(true)
}

impl InputConfig for SocketConfig {
    fn kind(&self) -> &'static Kind {
        &KIND
    }
    fn origin(&self) -> &Origin {
        &self.origin
    }
    fn name(&self) -> String {
        format!("socket:{}", self.path.display())
    }
    fn describe(&self) -> String {
        let uids = if self.allow_uids.is_empty() {
            String::new()
        } else {
            let list: Vec<String> = self.allow_uids.iter().map(u32::to_string).collect();
            format!(", uids {}", list.join(","))
        };
        let kind = match self.kind {
            SocketKind::Dgram => "dgram",
            SocketKind::Stream => "stream",
        };
        // The stream limits, when not the defaults.
        let mut limits = String::new();
        if let Some(t) = self.idle_timeout {
            limits.push_str(&format!(", idle timeout {}", humantime::format_duration(t)));
        }
        if let Some(n) = self.max_per_uid {
            limits.push_str(&format!(", {n} clients per uid"));
        }
        format!(
            "{} ({kind}, mode {:04o}{uids}{limits})",
            self.path.display(),
            self.mode
        )
    }
    fn sources(&self) -> Result<SourceFilter, String> {
        let path = self.path.clone();
        Ok(Arc::new(move |source: &Source| {
            source.kind() == KIND.key && source.path() == path
        }))
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
    fn clone_box(&self) -> Box<dyn InputConfig> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_names_the_fields_of_the_table() {
        let fields = crate::component::toml_doc::fields::<Table>();
        assert_eq!(KIND.table.names(), fields);
    }

    #[test]
    fn modes() {
        assert_eq!(mode_value("0660"), Ok(0o660));
        assert_eq!(mode_value("0o600"), Ok(0o600));
        assert!(mode_value("999").is_err());
    }

    #[test]
    fn mode_and_uids_apply_to_the_sockets_before_them() {
        let at = Origin::Arg { name: "t".into() };
        let mut inputs = Vec::new();
        add_option(&mut inputs, "socket-stream", "/s", &at).unwrap();
        add_option(&mut inputs, "socket-mode", "0600", &at).unwrap();
        add_option(&mut inputs, "socket-allow-uid", "1000", &at).unwrap();
        assert_eq!(inputs[0].describe(), "/s (stream, mode 0600, uids 1000)");
    }

    #[test]
    fn stream_limits_with_their_defaults_and_ranges() {
        let at = Origin::Arg { name: "t".into() };
        let mut inputs = Vec::new();
        add_option(&mut inputs, "socket", "/d", &at).unwrap();
        add_option(&mut inputs, "socket-stream", "/s", &at).unwrap();
        let socket = |inputs: &[Box<dyn InputConfig>], i: usize| {
            inputs[i]
                .as_any()
                .downcast_ref::<SocketConfig>()
                .unwrap()
                .clone()
        };
        let s = socket(&inputs, 1);
        assert_eq!(s.idle_timeout(), Some(DEFAULT_IDLE_TIMEOUT));
        assert_eq!(s.max_per_uid(), DEFAULT_MAX_PER_UID);
        add_option(&mut inputs, "socket-idle-timeout", "500ms", &at).unwrap();
        add_option(&mut inputs, "socket-max-per-uid", "8", &at).unwrap();
        assert_eq!(
            inputs[1].describe(),
            "/s (stream, mode 0660, idle timeout 500ms, 8 clients per uid)"
        );
        // Datagram sockets have no connections: left as they were.
        assert_eq!(inputs[0].describe(), "/d (dgram, mode 0660)");
        add_option(&mut inputs, "socket-idle-timeout", "0", &at).unwrap();
        assert_eq!(socket(&inputs, 1).idle_timeout(), None);
        assert!(add_option(&mut inputs, "socket-max-per-uid", "0", &at).is_err());
        assert!(add_option(&mut inputs, "socket-max-per-uid", "1025", &at).is_err());
        assert!(add_option(&mut inputs, "socket-idle-timeout", "8d", &at).is_err());
    }
}
