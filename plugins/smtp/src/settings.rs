//! The argument string of an `smtp:` alarm (uWSGI's curl form), checked once at
//! config load: `smtp://HOST[:PORT][/HELO];key=value;…` or `smtps://…`.
//!
//! The keys are those of uWSGI's `alarm_curl` plugin (plugins/alarm_curl/alarm_curl.c)
//! that apply to mail: `mail_from`, `mail_to`, `subject`, `auth_user`,
//! `auth_pass`, `ssl`, `ssl_insecure`, `timeout`, `conn_timeout`. Where uWSGI
//! silently ignores an unknown key, takes a bare `ssl` for a new URL, or treats
//! `ssl=false` as "on", this module reports an error or reads the value.

use lettre::message::Mailbox;
use logalarm_plugin_api::{MAX_PERIOD, MAX_PERIOD_TEXT, resolve_secret};
use std::fmt;
use std::time::Duration;
use url::{Host, Url};

/// The default of `timeout` and `conn_timeout`: uWSGI's `socket-timeout`
/// default, which its curl alarm uses for both.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(4);

/// The port of `smtp://` URLs without one (RFC 5321 §4.5.4.2, curl's default).
pub const SMTP_PORT: u16 = 25;

/// The port of `smtps://` URLs without one (RFC 8314 §7.3, curl's default).
pub const SMTPS_PORT: u16 = 465;

/// How the connection is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Security {
    /// Plain text, as curl does without `ssl` (CURLUSESSL_NONE): STARTTLS is
    /// not even tried, so a local relay with a self-signed certificate works.
    Plain,
    /// `ssl`: STARTTLS is required (curl's CURLUSESSL_ALL, RFC 3207); a server
    /// that does not offer it is a delivery failure, never a plain-text fallback.
    StartTls,
    /// `smtps://`: TLS from the first byte (RFC 8314 implicit TLS).
    Implicit,
}

/// A checked `smtp:` argument string.
pub struct Settings {
    /// The server's host name or address (IPv6 without brackets).
    pub host: String,
    /// The server's port.
    pub port: u16,
    /// The name to give in EHLO: the URL's path, as curl takes it; `None` for
    /// this machine's host name.
    pub helo: Option<String>,
    /// How the connection is protected.
    pub security: Security,
    /// Accept any server certificate (`ssl_insecure`, curl's
    /// `CURLOPT_SSL_VERIFYPEER`/`VERIFYHOST` off).
    pub insecure: bool,
    /// The sender (`mail_from`): the envelope sender and the `From:` header.
    pub from: Mailbox,
    /// The recipients (`mail_to`, comma-separated): the envelope and the `To:` header.
    pub to: Vec<Mailbox>,
    /// The `subject` key, if given.
    pub subject: Option<String>,
    /// `auth_user` and the resolved `auth_pass`.
    pub auth: Option<(String, Secret)>,
    /// The whole delivery's time limit (`timeout=SECONDS`, curl's
    /// `CURLOPT_TIMEOUT`), if given.
    pub timeout: Option<Duration>,
    /// The TCP connect time limit (`conn_timeout=SECONDS`, curl's
    /// `CURLOPT_CONNECTTIMEOUT`; default [`DEFAULT_TIMEOUT`]).
    pub conn_timeout: Duration,
}

/// A password: never shown, not even by `{:?}`.
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// An example for error messages.
const EXAMPLE: &str =
    "smtp:smtp://mail.example.com:587;mail_from=alarm@example.com;mail_to=ops@example.com;ssl";

/// The keys this plugin reads.
const KEYS: &str =
    "mail_from, mail_to, subject, auth_user, auth_pass, ssl, ssl_insecure, timeout, conn_timeout";

impl Settings {
    /// Parses and checks `args`; secrets (`auth_pass=env:VAR`, `file:PATH`)
    /// are resolved here, so a missing one is a config error.
    ///
    /// # Errors
    /// What is wrong and how to fix it; never the password.
    pub fn parse(args: &str) -> Result<Settings, String> {
        let mut tokens = args.split(';').map(str::trim).filter(|t| !t.is_empty());
        let url = tokens.next().ok_or_else(|| {
            format!("smtp: needs a server URL and the mail's addresses, e.g. {EXAMPLE}")
        })?;
        let (host, port, helo, implicit) = parse_url(url)?;
        let mut keys = Keys::default();
        for token in tokens {
            keys.set(token)?;
        }
        let from = keys
            .mail_from
            .ok_or_else(|| {
                format!("smtp: mail_from= is missing: who sends the mail, e.g. {EXAMPLE}")
            })
            .and_then(|v| mailbox("mail_from", &v))?;
        let to_text = keys.mail_to.ok_or_else(|| {
            format!(
                "smtp: mail_to= is missing: who gets the mail (comma-separated), e.g. {EXAMPLE}"
            )
        })?;
        let to = to_text
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(|a| mailbox("mail_to", a))
            .collect::<Result<Vec<_>, _>>()?;
        if to.is_empty() {
            return Err(
                "smtp: mail_to= names no recipient; give one or more addresses, comma-separated"
                    .into(),
            );
        }
        let auth = match (keys.auth_user, keys.auth_pass) {
            (None, None) => None,
            (Some(user), Some(pass)) => {
                let pass = resolve_secret(&pass).map_err(|e| format!("smtp: auth_pass: {e}"))?;
                Some((user, Secret(pass)))
            }
            (Some(_), None) => {
                return Err(
                    "smtp: auth_user= needs auth_pass= (the password, or env:VAR or file:PATH)"
                        .into(),
                );
            }
            (None, Some(_)) => {
                return Err("smtp: auth_pass= needs auth_user= (the login name)".into());
            }
        };
        let security = match (implicit, keys.ssl) {
            (true, _) => Security::Implicit,
            (false, true) => Security::StartTls,
            (false, false) => Security::Plain,
        };
        Ok(Settings {
            host,
            port,
            helo,
            security,
            insecure: keys.ssl_insecure,
            from,
            to,
            subject: keys.subject,
            auth,
            timeout: keys.timeout,
            conn_timeout: keys.conn_timeout.unwrap_or(DEFAULT_TIMEOUT),
        })
    }

    /// `host:port` as the server is shown in logs and errors (IPv6 in brackets).
    pub fn server(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// `args` with every secret in them replaced by `***`: the value of
/// `auth_pass=`, and a password in the URL (which [`Settings::parse`] refuses,
/// but `check` must not show either way).
pub fn redact(args: &str) -> String {
    args.split(';')
        .enumerate()
        .map(|(i, token)| {
            if i == 0 {
                redact_url(token)
            } else if token.trim_start().starts_with("auth_pass=") {
                let indent = &token[..token.len() - token.trim_start().len()];
                format!("{indent}auth_pass=***")
            } else {
                token.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(";")
}

/// A URL token with the part between `://` and the last `@` of its authority
/// replaced by `***`.
fn redact_url(token: &str) -> String {
    let Some(start) = token.find("://").map(|i| i + 3) else {
        return token.to_owned();
    };
    let authority_end = token[start..]
        .find(['/', '?', '#'])
        .map_or(token.len(), |i| start + i);
    match token[start..authority_end].rfind('@') {
        Some(at) => format!("{}***{}", &token[..start], &token[start + at..]),
        None => token.to_owned(),
    }
}

/// The URL's host, port, EHLO name (its path, as curl reads it) and whether
/// it is `smtps://`. A token without `://` is taken as `smtp://TOKEN`.
fn parse_url(token: &str) -> Result<(String, u16, Option<String>, bool), String> {
    let text = if token.contains("://") {
        token.to_owned()
    } else {
        format!("smtp://{token}")
    };
    let shown = redact_url(&text);
    let url = Url::parse(&text).map_err(|e| {
        format!("smtp: cannot read the server URL {shown:?}: {e}; write smtp://HOST[:PORT] or smtps://HOST[:PORT]")
    })?;
    let implicit = match url.scheme() {
        "smtp" => false,
        "smtps" => true,
        "http" | "https" => {
            return Err(format!(
                "smtp: {shown:?} is an HTTP URL; use the http: plugin (or curl:) for it"
            ));
        }
        other => {
            return Err(format!(
                "smtp: unsupported URL scheme {other:?} in {shown:?}; write smtp://HOST[:PORT] (STARTTLS with ;ssl) or smtps://HOST[:PORT] (TLS)"
            ));
        }
    };
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "smtp: the URL {shown:?} holds a login; give it as auth_user=NAME;auth_pass=PASSWORD (auth_pass may be env:VAR or file:PATH) instead"
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "smtp: the URL {shown:?} has a ?query or #fragment; options go after it as ;key=value"
        ));
    }
    let host = match url.host() {
        Some(Host::Domain(d)) if !d.is_empty() => d.to_owned(),
        Some(Host::Ipv4(a)) => a.to_string(),
        Some(Host::Ipv6(a)) => a.to_string(),
        _ => {
            return Err(format!(
                "smtp: the URL {shown:?} names no server; write smtp://HOST[:PORT]"
            ));
        }
    };
    let port = url
        .port()
        .unwrap_or(if implicit { SMTPS_PORT } else { SMTP_PORT });
    let path = url.path().trim_matches('/');
    let helo = (!path.is_empty()).then(|| path.to_owned());
    Ok((host, port, helo, implicit))
}

/// The `key=value` options, as given.
#[derive(Default)]
struct Keys {
    mail_from: Option<String>,
    mail_to: Option<String>,
    subject: Option<String>,
    auth_user: Option<String>,
    auth_pass: Option<String>,
    ssl: bool,
    ssl_insecure: bool,
    timeout: Option<Duration>,
    conn_timeout: Option<Duration>,
    seen: Vec<String>,
}

impl Keys {
    /// Takes one `key=value` (or bare flag) token.
    fn set(&mut self, token: &str) -> Result<(), String> {
        let (key, value) = match token.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim())),
            None => (token, None),
        };
        if self.seen.iter().any(|k| k == key) {
            return Err(format!("smtp: {key}= is given twice; keep one"));
        }
        self.seen.push(key.to_owned());
        let text = |value: Option<&str>| -> Result<String, String> {
            match value {
                Some(v) if !v.is_empty() => Ok(v.to_owned()),
                _ => Err(format!("smtp: {key}= needs a value")),
            }
        };
        match key {
            "mail_from" => self.mail_from = Some(text(value)?),
            "mail_to" => self.mail_to = Some(text(value)?),
            "subject" => self.subject = Some(text(value)?),
            "auth_user" => self.auth_user = Some(text(value)?),
            // Never echoed: the value may be the password itself.
            "auth_pass" => {
                self.auth_pass = Some(value.filter(|v| !v.is_empty()).map(str::to_owned).ok_or(
                    "smtp: auth_pass= needs a value (the password, or env:VAR or file:PATH)",
                )?);
            }
            "ssl" => self.ssl = flag(key, value)?,
            "ssl_insecure" => self.ssl_insecure = flag(key, value)?,
            "timeout" => self.timeout = Some(seconds(key, value)?),
            "conn_timeout" => self.conn_timeout = Some(seconds(key, value)?),
            "method" => {
                return Err("smtp: method= applies to http(s):// URLs only; remove it".into());
            }
            _ if value.is_none() => {
                return Err(format!(
                    "smtp: unexpected {key:?}: the URL comes first and only once, then key=value options ({KEYS})"
                ));
            }
            _ => return Err(format!("smtp: unknown key {key:?}; the keys are: {KEYS}")),
        }
        Ok(())
    }
}

/// A boolean option: bare (`ssl`) or `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`).
fn flag(key: &str, value: Option<&str>) -> Result<bool, String> {
    match value.map(str::to_ascii_lowercase).as_deref() {
        None | Some("true" | "1" | "yes" | "on") => Ok(true),
        Some("false" | "0" | "no" | "off") => Ok(false),
        Some(other) => Err(format!(
            "smtp: {key}={other} is not a boolean; write {key} or {key}=true, or {key}=false"
        )),
    }
}

/// A positive number of seconds (uWSGI takes whole seconds; fractions are
/// allowed here), at most [`MAX_PERIOD`] (365 days).
fn seconds(key: &str, value: Option<&str>) -> Result<Duration, String> {
    let text = value.unwrap_or_default();
    let secs = text
        .parse::<f64>()
        .ok()
        .filter(|s| *s > 0.0)
        .ok_or_else(|| {
            format!("smtp: {key}={text:?} is not a positive number of seconds, e.g. {key}=4")
        })?;
    Duration::try_from_secs_f64(secs)
        .ok()
        .filter(|d| *d <= MAX_PERIOD)
        .ok_or_else(|| {
            format!(
                "smtp: {key}={text:?} is longer than {MAX_PERIOD_TEXT}, the longest time limit logalarm takes; write seconds from 0.001 to {}",
                MAX_PERIOD.as_secs()
            )
        })
}

/// One mail address (`user@example.com` or `Name <user@example.com>`).
fn mailbox(key: &str, text: &str) -> Result<Mailbox, String> {
    text.parse::<Mailbox>().map_err(|e| {
        format!("smtp: {key}: {text:?} is not a mail address ({e}); write user@example.com or Name <user@example.com>")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &str) -> Result<Settings, String> {
        Settings::parse(args)
    }

    #[test]
    fn reads_the_uwsgi_form() {
        let s = parse(
            "smtp://mail.example.com;mail_to=a@x.org,Bee <b@y.org>;mail_from=uwsgi@example.com;auth_user=u;auth_pass=p;subject=alarm from uWSGI",
        )
        .unwrap();
        assert_eq!((s.host.as_str(), s.port), ("mail.example.com", 25));
        assert_eq!(s.security, Security::Plain);
        assert_eq!(s.to.len(), 2);
        assert_eq!(s.to[1].email.to_string(), "b@y.org");
        assert_eq!(s.from.email.to_string(), "uwsgi@example.com");
        assert_eq!(s.subject.as_deref(), Some("alarm from uWSGI"));
        let (user, pass) = s.auth.unwrap();
        assert_eq!((user.as_str(), pass.0.as_str()), ("u", "p"));
        assert_eq!(s.conn_timeout, DEFAULT_TIMEOUT);
        assert_eq!(s.timeout, None);
    }

    #[test]
    fn schemes_ports_and_flags() {
        let s = parse("smtps://[::1];mail_to=a@x;mail_from=b@y;ssl_insecure=true").unwrap();
        assert_eq!(
            (s.host.as_str(), s.port, s.security),
            ("::1", 465, Security::Implicit)
        );
        assert!(s.insecure);
        assert_eq!(s.server(), "[::1]:465");
        let s = parse("smtp://h:587/client.example.org;mail_to=a@x;mail_from=b@y;ssl;timeout=1.5;conn_timeout=2").unwrap();
        assert_eq!((s.port, s.security), (587, Security::StartTls));
        assert_eq!(s.helo.as_deref(), Some("client.example.org"));
        assert_eq!(s.timeout, Some(Duration::from_millis(1500)));
        assert_eq!(s.conn_timeout, Duration::from_secs(2));
        let s = parse("h;mail_to=a@x;mail_from=b@y;ssl=0").unwrap();
        assert_eq!(
            (s.host.as_str(), s.port, s.security),
            ("h", 25, Security::Plain)
        );
    }

    #[test]
    fn errors_name_the_fix() {
        let err = |a: &str| parse(a).err().unwrap();
        assert!(err("smtp://h;mail_to=a@x").contains("mail_from= is missing"));
        assert!(err("smtp://h;mail_from=a@x").contains("mail_to= is missing"));
        assert!(
            err("smtp://h;mail_from=a@x;mail_to=b@y;colour=red").contains("unknown key \"colour\"")
        );
        assert!(err("http://h;mail_from=a@x;mail_to=b@y").contains("http: plugin"));
        assert!(err("smtp://h;mail_from=a@x;mail_to=b@y;timeout=0").contains("positive number"));
        assert!(err("smtp://h;mail_from=a@x;mail_to=b@y;ssl=maybe").contains("not a boolean"));
        assert!(err("smtp://h;mail_from=nobody;mail_to=b@y").contains("not a mail address"));
        assert!(err("smtp://h;mail_from=a@x;mail_to=b@y;mail_to=c@z").contains("twice"));
        assert!(err("smtp://h;mail_from=a@x;mail_to=b@y;auth_user=u").contains("needs auth_pass"));
        let e = err("smtp://u:hunter2@h;mail_from=a@x;mail_to=b@y");
        assert!(e.contains("auth_user") && !e.contains("hunter2"), "{e}");
        let e = err(
            "smtp://h;mail_from=a@x;mail_to=b@y;auth_user=u;auth_pass=env:LOGALARM_SMTP_SURELY_UNSET",
        );
        assert!(e.contains("LOGALARM_SMTP_SURELY_UNSET"), "{e}");
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact("smtp://h;auth_user=u;auth_pass=hunter2;subject=x"),
            "smtp://h;auth_user=u;auth_pass=***;subject=x"
        );
        assert_eq!(
            redact("smtps://u:hunter2@h:465/x;mail_to=a"),
            "smtps://***@h:465/x;mail_to=a"
        );
        assert_eq!(
            redact("smtp://h; auth_pass=env:P"),
            "smtp://h; auth_pass=***"
        );
    }
}
