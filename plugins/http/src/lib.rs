//! `http:URL;key=val;…` — sends the alarm to an HTTP(S) URL (uWSGI's `curl:`
//! alarm for http:// and https:// URLs; the engine maps `curl:` here).
//!
//! uWSGI's keys, as its curl alarm reads them (split at `;`, the first token
//! without `=` is the URL, `url=` works too):
//!
//! | key | meaning |
//! |---|---|
//! | `method` | the request method; default POST |
//! | `auth_user`, `auth_pass` | Basic authentication (RFC 7617); `auth_pass` may be `env:VAR` or `file:PATH` |
//! | `timeout` | the whole request's time limit; default 4 s (uWSGI's `socket-timeout`) |
//! | `conn_timeout` | connecting's time limit (TCP and TLS); default 4 s |
//! | `ssl_insecure` | `true`: accept any certificate (self-signed, expired, another host's); off by default |
//!
//! Times are seconds (`10`, `0.5`) or durations (`500ms`). In TOML the same
//! keys may stand as keys of the alarm (`auth_pass = "env:HOOK_PASS"`, the
//! engine's `timeout`), beside:
//! - `headers = { "Content-Type" = "application/json", … }`: extra headers
//!   (a value `env:VAR` or `file:PATH` is read from there, for tokens);
//! - `body = '…'`: the body as a Jinja template over the notification (see
//!   the `logalarm-template` crate), e.g.
//!   `'{"alarm": {{ alarm | tojson }}, "text": {{ line | tojson }}}'`.
//!
//! Without `body`, the body is the message followed by a newline, as uWSGI
//! sends the log line, with `Content-Type: text/plain; charset=utf-8`. Every
//! request carries `Idempotency-Key: ID` (the notification's id, the same on
//! each attempt) so that a receiver can drop a retried duplicate, and
//! `User-Agent: logalarm/VERSION`. Redirects are not followed.
//!
//! What an answer means for the engine's retries: 2xx delivered; 408, 429,
//! 5xx, connection errors and timeouts transient (429 and 503 honour
//! `Retry-After`); 3xx, other 4xx and TLS errors (an untrusted certificate)
//! permanent. Certificates are verified against the system's roots through
//! rustls (no OpenSSL) unless `ssl_insecure` says otherwise. Connections are
//! kept alive per alarm. Proxies follow `HTTP_PROXY`, `HTTPS_PROXY`,
//! `NO_PROXY`.
//!
//! No error message and no `check` output ever shows `auth_pass`, a password
//! in the URL, or a header read from `env:`/`file:`.

#![warn(missing_docs)]

mod args;
mod send;

pub use args::DEFAULT_TIMEOUT;
use logalarm_plugin_api::{Action, ActionFuture, BuildContext, Notification, Plugin};

/// The `http` plugin.
pub struct HttpPlugin;

impl Plugin for HttpPlugin {
    fn name(&self) -> &'static str {
        "http"
    }

    fn redact(&self, args: &str) -> String {
        args::redact(args)
    }

    fn options(&self) -> &'static [&'static str] {
        &args::TOML_KEYS
    }

    fn retries(&self) -> bool {
        true
    }

    /// `ARGS` is `URL;key=val;…` (see the crate docs).
    fn build(&self, ctx: &BuildContext, args: &str) -> Result<Box<dyn Action>, String> {
        let settings = args::settings(ctx, args)?;
        Ok(Box::new(HttpAction(send::HttpAction::new(settings)?)))
    }
}

/// A built `http:` action.
pub struct HttpAction(send::HttpAction);

impl Action for HttpAction {
    fn fire<'a>(&'a self, n: &'a Notification) -> ActionFuture<'a> {
        Box::pin(self.0.send(n))
    }
}
