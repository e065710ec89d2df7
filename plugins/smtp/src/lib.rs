//! `smtp:URL;key=value;…` — sends each notification as a mail (the mail half of
//! uWSGI's `curl` alarm, plugins/alarm_curl).
//!
//! ```text
//! alarm = mail smtp:smtp://mail.example.com:587;mail_from=alarm@example.com;mail_to=ops@example.com,dev@example.com;subject=app alarm;auth_user=alarm;auth_pass=env:SMTP_PASS;ssl
//! ```
//!
//! The arguments are uWSGI's curl form, so `curl:smtp://…` and `curl:smtps://…`
//! lines reach this plugin unchanged:
//! - the URL: `smtp://HOST[:PORT][/HELO]` (port 25; plain text unless `ssl`) or
//!   `smtps://HOST[:PORT]` (port 465; TLS from the first byte, RFC 8314); a
//!   path is the name given in EHLO, as curl reads it (default: this machine's
//!   host name); a URL without `scheme://` is taken as `smtp://`;
//! - `mail_from=ADDR` and `mail_to=ADDR[,ADDR…]` (both required): the
//!   envelope and the `From:`/`To:` headers; `Name <user@host>` works too;
//! - `subject=TEXT` (default `[logalarm] alarm NAME`);
//! - `auth_user=NAME;auth_pass=PASSWORD`: SMTP AUTH PLAIN or LOGIN (RFC 4954,
//!   4616); the password may be `env:VAR` or `file:PATH`, resolved at load;
//!   it is shown as `***` by `logalarm check` and never appears in a log line
//!   or an error;
//! - `ssl` (or `ssl=true`): STARTTLS required (RFC 3207; curl's
//!   CURLUSESSL_ALL); without it, as with curl, STARTTLS is not tried, so
//!   anything beyond a local relay should use `ssl` or `smtps://`;
//! - `ssl_insecure` (or `=true`): accept any certificate (self-signed, other
//!   host); off by default: certificates are checked against the system's CA
//!   store (Debian `ca-certificates`);
//! - `timeout=SECONDS`: the whole delivery's deadline (curl's CURLOPT_TIMEOUT;
//!   default: the alarm's TOML `timeout`, else 4 s, uWSGI's `socket-timeout`);
//!   `conn_timeout=SECONDS`: the TCP connect deadline (default 4 s).
//!
//! Beyond uWSGI, which sends only `To:` and `Subject:` before the raw line:
//! each mail is a proper RFC 5322 message with `From`, `To` (all recipients),
//! `Subject`, `Date` (when the line was read), `Message-ID: <ID@HOST>` (ID is
//! the notification's id, the same on every attempt to deliver it, so a
//! retried delivery can be recognised), `MIME-Version` and `Content-Type:
//! text/plain; charset=utf-8`. Its text is the message (invalid UTF-8 replaced
//! by U+FFFD), then a signature block naming the alarm and where the line came
//! from (see [`compose::Compose::body`]). Unknown keys, a missing `mail_from`
//! or `mail_to`, or a bad address are config errors.
//!
//! Failures: a 4xx reply, a refused or broken connection, a timeout are
//! [`ActionError::Transient`] (worth retrying); a 5xx reply, a TLS certificate
//! that is not trusted, no STARTTLS where `ssl` requires it, or no common AUTH
//! mechanism are [`ActionError::Permanent`] (RFC 5321 §4.2.1).
//!
//! Each alarm has one transport, built at config load, that opens a connection
//! per mail and closes it after (QUIT). lettre's connection pool is not used:
//! a delivery cut by `timeout` would hand its connection back to the pool in
//! the middle of a transaction, and the next mail would read the previous
//! one's replies; alarm mail is rare enough that a connection each costs
//! nothing worth that risk.

#![warn(missing_docs)]

pub mod classify;
pub mod compose;
pub mod settings;

use compose::Compose;
use lettre::message::header::{ContentType, MIME_VERSION_1_0};
use lettre::message::{Mailbox, Mailboxes};
use lettre::transport::smtp::AsyncSmtpTransport;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncTransport, Message, Tokio1Executor};
use logalarm_plugin_api::{Action, ActionError, ActionFuture, BuildContext, Notification, Plugin};
use settings::{DEFAULT_TIMEOUT, Security, Settings};
use std::time::Duration;

/// The `smtp` plugin.
pub struct SmtpPlugin;

impl Plugin for SmtpPlugin {
    fn name(&self) -> &'static str {
        "smtp"
    }

    /// Hides `auth_pass=…` (and a password in the URL) as `***`.
    fn redact(&self, args: &str) -> String {
        settings::redact(args)
    }

    /// TOML `subject` and `body` templates ([`compose::Compose::new`]).
    fn options(&self) -> &'static [&'static str] {
        &["subject", "body"]
    }

    /// A mail server that is down or answers 4xx is worth trying again.
    fn retries(&self) -> bool {
        true
    }

    /// Checks `args` (see the crate doc), resolves the password and builds the
    /// alarm's transport with its TLS settings.
    fn build(&self, ctx: &BuildContext, args: &str) -> Result<Box<dyn Action>, String> {
        let s = Settings::parse(args)?;
        Ok(Box::new(SmtpAction::new(ctx, s)?))
    }
}

/// A built `smtp:` action: one alarm's transport and the parts of its mails.
pub struct SmtpAction {
    alarm: String,
    server: String,
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Mailboxes,
    compose: Compose,
    host: String,
    timeout: Duration,
}

impl SmtpAction {
    fn new(ctx: &BuildContext, s: Settings) -> Result<SmtpAction, String> {
        let host = hostname();
        let server = s.server();
        let tls_params = || {
            TlsParameters::builder(s.host.clone())
                .dangerous_accept_invalid_certs(s.insecure)
                .dangerous_accept_invalid_hostnames(s.insecure)
                .build_rustls()
                .map_err(|e| format!("smtp {server}: cannot set up TLS: {e}"))
        };
        let tls = match s.security {
            Security::Plain => Tls::None,
            Security::StartTls => Tls::Required(tls_params()?),
            Security::Implicit => Tls::Wrapper(tls_params()?),
        };
        let helo = s.helo.clone().unwrap_or_else(|| host.clone());
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(s.host.clone())
            .port(s.port)
            .tls(tls)
            .timeout(Some(s.conn_timeout))
            .hello_name(ClientId::Domain(helo));
        if let Some((user, pass)) = s.auth {
            builder = builder.credentials(Credentials::new(user, pass.0));
        }
        Ok(SmtpAction {
            alarm: ctx.alarm.clone(),
            server,
            transport: builder.build(),
            from: s.from,
            to: s.to.into_iter().collect(),
            compose: Compose::new(ctx, s.subject)?,
            host,
            timeout: s.timeout.or(ctx.timeout).unwrap_or(DEFAULT_TIMEOUT),
        })
    }

    /// The mail for one notification, with the Message-ID `id`.
    ///
    /// # Errors
    /// [`ActionError::Permanent`] when lettre cannot build it (it cannot with
    /// addresses checked at load; kept as an error rather than a panic).
    pub fn message(&self, n: &Notification, id: &str) -> Result<Message, ActionError> {
        let template = |e: String| ActionError::Permanent(format!("smtp: {e}"));
        let subject = self.compose.subject(n).map_err(template)?;
        let body = self.compose.body(n).map_err(template)?;
        Message::builder()
            .from(self.from.clone())
            .mailbox(lettre::message::header::To::from(self.to.clone()))
            .subject(subject)
            .date(n.time)
            .message_id(Some(id.to_owned()))
            .header(MIME_VERSION_1_0)
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| ActionError::Permanent(format!("smtp: cannot build the mail: {e}")))
    }

    /// Sends one mail within the delivery timeout.
    async fn send(&self, n: &Notification) -> Result<(), ActionError> {
        let id = compose::message_id(&n.id.to_string(), &self.host);
        let mail = self.message(n, &id)?;
        match tokio::time::timeout(self.timeout, self.transport.send(mail)).await {
            Ok(Ok(reply)) => {
                let text = reply.message().collect::<Vec<_>>().join(" ");
                // A success per delivery: only worth a line when asked (-v).
                tracing::debug!(alarm = %self.alarm, "smtp {}: mail {id} accepted: {} {text}", self.server, reply.code());
                Ok(())
            }
            Ok(Err(e)) => Err(classify::classify(&self.server, &e)),
            Err(_) => Err(ActionError::Transient(format!(
                "smtp {}: no delivery within {:?} (timeout)",
                self.server, self.timeout
            ))),
        }
    }
}

impl Action for SmtpAction {
    fn fire<'a>(&'a self, n: &'a Notification) -> ActionFuture<'a> {
        Box::pin(self.send(n))
    }
}

/// This machine's host name, for EHLO and the Message-ID; `localhost` when it
/// has none (or none in UTF-8).
fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}
