//! Which SMTP failures are worth retrying: RFC 5321 §4.2.1 says a 4yz reply is
//! a transient negative completion ("the action may be requested again") and a
//! 5yz reply a permanent one; a refused connection, a reset or a timeout is an
//! outage that may end. What only the config can fix (a TLS certificate that is
//! not trusted, no STARTTLS or AUTH offered, a server that does not speak SMTP
//! over TLS) is permanent.

use lettre::transport::smtp::Error;
use logalarm_plugin_api::ActionError;
use std::error::Error as _;

/// The [`ActionError`] for a failed delivery to `server` (`host:port`).
pub fn classify(server: &str, e: &Error) -> ActionError {
    // lettre shows these as "permanent error (554): TEXT" / "transient error (451): TEXT".
    if e.is_permanent() {
        return ActionError::Permanent(format!("smtp {server}: {e}"));
    }
    if e.is_transient() {
        return ActionError::Transient(format!("smtp {server}: {e}"));
    }
    if e.is_timeout() {
        return ActionError::Transient(format!(
            "smtp {server}: timed out connecting (conn_timeout): {e}"
        ));
    }
    if e.is_client() {
        // lettre's own checks: no STARTTLS offered (with `ssl`), no AUTH
        // mechanism in common, 8-bit content to a 7-bit server. Its display
        // says "internal client error", which these are not: show the cause.
        let cause = e
            .source()
            .map_or_else(|| e.to_string(), ToString::to_string);
        return ActionError::Permanent(format!("smtp {server}: {cause}"));
    }
    if let Some(tls) = tls_failure(e) {
        return ActionError::Permanent(format!("smtp {server}: {tls}"));
    }
    ActionError::Transient(format!("smtp {server}: {}", chain(e)))
}

/// What went wrong, with the fix, if `e` is a TLS handshake failure:
/// tokio-rustls reports those as an `io::Error` around a [`rustls::Error`]
/// (which `io::Error::source` skips, hence `get_ref`).
fn tls_failure(e: &Error) -> Option<String> {
    let mut source = e.source();
    while let Some(err) = source {
        let inner = err
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
            .and_then(|i| i.downcast_ref::<rustls::Error>());
        if let Some(tls) = inner.or_else(|| err.downcast_ref::<rustls::Error>()) {
            return Some(match tls {
                rustls::Error::InvalidCertificate(_) => format!(
                    "the server's TLS certificate is not trusted ({tls}); trust its CA in the system's store, or add ssl_insecure=true to accept it unchecked"
                ),
                other => format!(
                    "TLS failed: {other}; does the server speak TLS there? smtps:// is TLS from the first byte (usually port 465), smtp://…;ssl is STARTTLS (usually port 587 or 25)"
                ),
            });
        }
        source = err.source();
    }
    e.is_tls().then(|| format!("TLS failed: {}", chain(e)))
}

/// `e` and its sources, `: `-separated, each shown once (lettre's display
/// already includes its direct source).
fn chain(e: &Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(err) = source {
        let part = err.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = err.source();
    }
    text
}
