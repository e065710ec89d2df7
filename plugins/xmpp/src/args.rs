//! The `ARGS` of `xmpp:ARGS`: uWSGI's `JID[/RESOURCE];PASSWORD;TO1,TO2`, and
//! optional `;key=value` items after the recipients.
//!
//! uWSGI (plugins/alarm_xmpp) splits the arguments at `;` into the account's
//! JID, its password and a comma-separated recipient list, and ignores any
//! further item; logalarm reads further items as settings instead:
//!
//! | key | values | default |
//! |---|---|---|
//! | `host` | the server's host name or IP address | the JID's domain |
//! | `port` | TCP port | 5222 |
//! | `tls` | `required` (STARTTLS, certificate verified against the system's CA store), `insecure` (STARTTLS, any certificate accepted, as uWSGI does), `no` (plain TCP: loopback and tests only) | `required` |
//!
//! The server is `host`:`port` as given; DNS SRV records (`_xmpp-client._tcp`)
//! are not looked up, so a domain whose server lives elsewhere needs `host=`.

use logalarm_plugin_api::resolve_secret;
use std::fmt;
use tokio_xmpp::jid::{BareJid, Jid};

/// The settings that may follow the recipients, or be TOML keys of the alarm.
pub const KEYS: &[&str] = &["host", "port", "tls"];

/// The default client-to-server port (RFC 6120 §14.7).
pub const DEFAULT_PORT: u16 = 5222;

/// How the connection is secured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tls {
    /// STARTTLS (RFC 6120 §5), the server's certificate verified for the JID's
    /// domain against the system's CA certificates.
    Required,
    /// STARTTLS, but any certificate is accepted (uWSGI's behaviour: its gloox
    /// client accepts every certificate). For self-signed test servers.
    Insecure,
    /// No TLS at all: the password and messages cross the network in the
    /// clear. Only for servers on loopback.
    No,
}

/// The parsed arguments of one `xmpp:` alarm.
#[derive(Clone)]
pub struct Settings {
    /// The account: `user@domain`, logged in with SASL (RFC 6120 §6).
    pub account: BareJid,
    /// The resource to bind (RFC 6120 §7), `None` to let the server choose one.
    pub resource: Option<String>,
    /// The account's password, resolved from `env:`/`file:` if given so.
    pub password: String,
    /// Who receives each message (a chat message to each).
    pub recipients: Vec<Jid>,
    /// The server's host name or address.
    pub host: String,
    /// The server's port.
    pub port: u16,
    /// How the connection is secured.
    pub tls: Tls,
}

// Never print the password, not even in debug output.
impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("account", &self.account)
            .field("resource", &self.resource)
            .field("password", &"***")
            .field("recipients", &self.recipients)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .finish()
    }
}

const USAGE: &str = "xmpp: takes JID;PASSWORD;TO1,TO2 (uWSGI's form), optionally followed by ;host=…;port=…;tls=required|insecure|no, e.g. xmpp:app@example.com;env:XMPP_PASSWORD;ops@example.com,oncall@example.com";

impl Settings {
    /// Parses `ARGS` and resolves the password (`env:VAR`, `file:PATH`, or the
    /// password itself).
    ///
    /// # Errors
    /// A message naming the bad part and the expected form. It never contains
    /// the password.
    pub fn parse(args: &str) -> Result<Settings, String> {
        let mut fields = args.split(';');
        let jid = fields.next().unwrap_or("").trim();
        let password = fields.next().unwrap_or("");
        let to = fields.next().unwrap_or("").trim();
        if jid.is_empty() || password.is_empty() || to.is_empty() {
            return Err(USAGE.to_owned());
        }
        let (account, resource) = parse_account(jid)?;
        let recipients = to
            .split(',')
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(|r| {
                Jid::new(r).map_err(|e| format!("xmpp: recipient {r:?} is not a valid JID: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if recipients.is_empty() {
            return Err(format!("xmpp: no recipient given; {USAGE}"));
        }
        let mut settings = Settings {
            host: account.domain().as_str().to_owned(),
            account,
            resource,
            password: String::new(),
            recipients,
            port: DEFAULT_PORT,
            tls: Tls::Required,
        };
        for item in fields.map(str::trim).filter(|f| !f.is_empty()) {
            settings.set(item)?;
        }
        settings.password = resolve_secret(password).map_err(|e| format!("xmpp: {e}"))?;
        if settings.password.is_empty() {
            return Err("xmpp: the password is empty".to_owned());
        }
        Ok(settings)
    }

    fn set(&mut self, item: &str) -> Result<(), String> {
        let Some((key, value)) = item.split_once('=') else {
            return Err(format!(
                "xmpp: {item:?} after the recipients is not key=value; the keys are host, port, tls"
            ));
        };
        self.apply(key.trim(), value)
    }

    /// Sets one of the keys [`KEYS`] (from `;key=value` in ARGS, or the
    /// alarm's TOML key of that name).
    ///
    /// # Errors
    /// An unknown key or a bad value, named.
    pub fn apply(&mut self, key: &str, value: &str) -> Result<(), String> {
        let value = value.trim();
        match key {
            "host" if !value.is_empty() => self.host = value.to_owned(),
            "port" => {
                self.port = value
                    .parse()
                    .ok()
                    .filter(|&p: &u16| p != 0)
                    .ok_or_else(|| format!("xmpp: port={value:?} is not a TCP port (1-65535)"))?;
            }
            "tls" => {
                self.tls = match value {
                    "required" => Tls::Required,
                    "insecure" => Tls::Insecure,
                    "no" => Tls::No,
                    _ => {
                        return Err(format!(
                            "xmpp: tls={value:?}: use required (the default: STARTTLS, certificate verified), insecure (any certificate) or no (plain TCP, loopback only)"
                        ));
                    }
                }
            }
            "host" => return Err("xmpp: host= needs a host name or address".to_owned()),
            other => {
                return Err(format!(
                    "xmpp: unknown key {other:?}; the keys after the recipients are host, port, tls"
                ));
            }
        }
        Ok(())
    }
}

/// Splits `user@domain[/resource]`; the user part is required (SASL logs in
/// with it).
fn parse_account(jid: &str) -> Result<(BareJid, Option<String>), String> {
    let parsed = Jid::new(jid).map_err(|e| format!("xmpp: {jid:?} is not a valid JID: {e}"))?;
    if parsed.node().is_none() {
        return Err(format!(
            "xmpp: the account {jid:?} has no user part; write it as user@{jid}"
        ));
    }
    let resource = parsed.resource().map(|r| r.as_str().to_owned());
    Ok((parsed.to_bare(), resource))
}

/// `args` with the password replaced by `***`, for `logalarm check` and
/// error messages. An `env:VAR` or `file:PATH` reference is no secret and is
/// shown as it is, so that a check says where the password comes from.
pub fn redact(args: &str) -> String {
    let mut fields: Vec<&str> = args.split(';').collect();
    if let Some(password) = fields.get_mut(1)
        && !password.starts_with("env:")
        && !password.starts_with("file:")
    {
        *password = "***";
    }
    fields.join(";")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uwsgi_form() {
        let s = Settings::parse("app@example.it;secret1;foo1@foo.it,foo2@foo.it").unwrap();
        assert_eq!(s.account.to_string(), "app@example.it");
        assert_eq!(s.resource, None);
        assert_eq!(s.password, "secret1");
        let to: Vec<String> = s.recipients.iter().map(|j| j.to_string()).collect();
        assert_eq!(to, ["foo1@foo.it", "foo2@foo.it"]);
        assert_eq!(
            (s.host.as_str(), s.port, s.tls),
            ("example.it", 5222, Tls::Required)
        );
    }

    #[test]
    fn resource_and_settings() {
        let s = Settings::parse(
            "app@example.it/alarms;pw;ops@example.it;host=127.0.0.1;port=15222;tls=insecure",
        )
        .unwrap();
        assert_eq!(s.resource.as_deref(), Some("alarms"));
        assert_eq!(
            (s.host.as_str(), s.port, s.tls),
            ("127.0.0.1", 15222, Tls::Insecure)
        );
        assert_eq!(Settings::parse("a@b;pw;c@d;tls=no;").unwrap().tls, Tls::No);
    }

    #[test]
    fn errors_name_the_problem_never_the_password() {
        for (args, needle) in [
            ("", "JID;PASSWORD"),
            ("app@x;hunter2", "JID;PASSWORD"),
            ("example.it;hunter2;a@b", "no user part"),
            ("app@x;hunter2;a@b;port=0", "port="),
            ("app@x;hunter2;a@b;tls=maybe", "tls="),
            ("app@x;hunter2;a@b;colour=red", "unknown key"),
            ("app@x;hunter2;a@b;nonsense", "key=value"),
            ("app@x;hunter2;@@", "recipient"),
            (
                "app@x;env:LOGALARM_XMPP_SURELY_UNSET;a@b",
                "LOGALARM_XMPP_SURELY_UNSET",
            ),
        ] {
            let err = Settings::parse(args).unwrap_err();
            assert!(err.contains(needle), "{args}: {err}");
            assert!(!err.contains("hunter2"), "{args}: {err}");
        }
    }

    #[test]
    fn redacts_only_a_literal_password() {
        assert_eq!(redact("app@x;hunter2;a@b;port=1"), "app@x;***;a@b;port=1");
        assert_eq!(redact("app@x;env:PW;a@b"), "app@x;env:PW;a@b");
        assert_eq!(redact("app@x"), "app@x");
        assert!(!format!("{:?}", Settings::parse("a@b;hunter2;c@d").unwrap()).contains("hunter2"));
    }
}
