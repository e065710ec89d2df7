//! Sending one notification, and what the answer means for a retry.
//!
//! - 2xx: delivered.
//! - 408, 429, 5xx, connection errors, timeouts: transient (retried); 429 and
//!   503 with `Retry-After` (seconds or an HTTP-date, RFC 9110 §10.2.3) say
//!   how long to wait.
//! - 3xx (redirects are not followed: a webhook that moved should be
//!   reconfigured, and a POST must not silently turn into a GET), other 4xx,
//!   TLS errors (an untrusted certificate, a server that speaks no TLS), a
//!   body template failing on this notification: permanent.

use crate::args::{Settings, redact_url};
use logalarm_plugin_api::{ActionError, Notification};
use reqwest::header::{HeaderMap, HeaderValue, LOCATION, RETRY_AFTER};
use reqwest::{Client, Method, Response, StatusCode, Url};
use std::error::Error as _;
use std::time::{Duration, SystemTime};

/// The `Idempotency-Key` header (IETF draft-ietf-httpapi-idempotency-key-header).
const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// How much of an error response's body goes into the log, in bytes.
const SNIPPET: usize = 200;

/// A built `http:` action.
pub struct HttpAction {
    client: Client,
    url: Url,
    /// The URL as it may be shown (password hidden).
    shown: String,
    method: Method,
    auth: Option<(String, String)>,
    headers: HeaderMap,
    body: Option<logalarm_template::Template>,
    timeout: Duration,
}

impl HttpAction {
    /// Builds the client (its connection pool is the alarm's own).
    ///
    /// # Errors
    /// The TLS setup failed (no usable root certificates).
    pub fn new(settings: Settings) -> Result<Self, String> {
        // reqwest is built without a crypto provider of its own: ring's is
        // installed for the process (a no-op when one is installed already).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.conn_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("logalarm/", env!("CARGO_PKG_VERSION")))
            .tls_danger_accept_invalid_certs(settings.insecure)
            .build()
            .map_err(|e| format!("cannot set up the HTTP client: {}", chain(&e)))?;
        Ok(HttpAction {
            client,
            shown: redact_url(settings.url.as_str()),
            url: settings.url,
            method: settings.method,
            auth: settings.auth,
            headers: settings.headers,
            body: settings.body,
            timeout: settings.timeout,
        })
    }

    /// Sends `n` once.
    pub async fn send(&self, n: &Notification) -> Result<(), ActionError> {
        let body = match &self.body {
            Some(template) => template
                .render(n)
                .map_err(|e| ActionError::Permanent(format!("http: {e}")))?
                .into_bytes(),
            None => {
                // As uWSGI sends it: the log line with its newline.
                let mut body = n.body().into_owned();
                body.push(b'\n');
                body
            }
        };
        let mut headers = self.headers.clone();
        if !headers.contains_key(IDEMPOTENCY_KEY)
            && let Ok(id) = HeaderValue::from_str(&n.id.to_string())
        {
            headers.insert(IDEMPOTENCY_KEY, id);
        }
        let mut request = self
            .client
            .request(self.method.clone(), self.url.clone())
            .headers(headers)
            .body(body);
        if let Some((user, pass)) = &self.auth {
            request = request.basic_auth(user, Some(pass));
        }
        match request.send().await {
            Ok(response) => self.answer(response).await,
            Err(e) => Err(self.failure(&e)),
        }
    }

    /// What a response means.
    async fn answer(&self, response: Response) -> Result<(), ActionError> {
        let status = response.status();
        if status.is_success() {
            // Read to the end so the connection can be reused; the answer's
            // content does not matter.
            let _ = response.bytes().await;
            return Ok(());
        }
        let retry_after = retry_after(response.headers(), SystemTime::now());
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|l| l.to_str().ok())
            .map(redact_url);
        let snippet = snippet(&response.bytes().await.unwrap_or_default());
        let mut message = format!("http: {} {}: {status}", self.method, self.shown);
        if !snippet.is_empty() {
            message.push_str(": ");
            message.push_str(&snippet);
        }
        Err(match status {
            s if s.is_redirection() => ActionError::Permanent(format!(
                "{message}; redirected to {}: point the URL there",
                location.as_deref().unwrap_or("(no Location)")
            )),
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => match retry_after {
                Some(delay) => ActionError::RetryAfter(message, delay),
                None => ActionError::Transient(message),
            },
            StatusCode::REQUEST_TIMEOUT => ActionError::Transient(message),
            s if s.is_server_error() => ActionError::Transient(message),
            _ => ActionError::Permanent(message),
        })
    }

    /// What a failed request means.
    fn failure(&self, e: &reqwest::Error) -> ActionError {
        let what = format!("http: {} {}", self.method, self.shown);
        if let Some(tls) = tls_error(e) {
            let hint = match tls {
                rustls::Error::InvalidCertificate(_) => {
                    "; the server's certificate is not trusted: fix it (or add its CA to the system's), or set ssl_insecure=true to skip verification"
                }
                _ => "",
            };
            return ActionError::Permanent(format!("{what}: TLS: {tls}{hint}"));
        }
        if e.is_builder() {
            return ActionError::Permanent(format!("{what}: {}", chain(e)));
        }
        if e.is_timeout() {
            return ActionError::Transient(format!(
                "{what}: no complete answer within {} (timeout) ({})",
                humantime::format_duration(self.timeout),
                chain(e)
            ));
        }
        ActionError::Transient(format!("{what}: {}", chain(e)))
    }
}

/// The rustls error behind a failed request, if TLS failed.
fn tls_error(e: &reqwest::Error) -> Option<&rustls::Error> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = e.source();
    while let Some(err) = source {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        // io::Error::source skips the error it wraps (hyper-rustls wraps the
        // rustls error in an io::Error, which hyper wraps in another): look
        // inside instead.
        source = match err.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
    }
    None
}

/// An error and its causes, `: `-separated, without the URL (which may hold
/// a password) and without repeats.
fn chain(e: &reqwest::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut source: Option<&(dyn std::error::Error + 'static)> = e.source();
    let top = match e.url() {
        Some(_) => {
            // reqwest's Display adds " for url (…)"; its kind says the same without it.
            let text = e.to_string();
            text.split(" for url (").next().unwrap_or("").to_owned()
        }
        None => e.to_string(),
    };
    parts.push(top);
    while let Some(err) = source {
        let text = err.to_string();
        if parts.last().is_none_or(|last| !last.contains(&text)) {
            parts.push(text);
        }
        source = err.source();
    }
    parts.join(": ")
}

/// The delay a `Retry-After` header asks for: delay-seconds or an HTTP-date
/// (RFC 9110 §10.2.3); a date in the past means now. At most
/// [`MAX_PERIOD`](logalarm_plugin_api::MAX_PERIOD) (365 days): the worker
/// adds it to the clock, and a receiver's `Retry-After: 18446744073709551615`
/// must not overflow it (the retry deadline refuses such a wait anyway).
fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let delay = match value.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => {
            let at = httpdate::parse_http_date(value).ok()?;
            at.duration_since(now).unwrap_or(Duration::ZERO)
        }
    };
    Some(delay.min(logalarm_plugin_api::MAX_PERIOD))
}

/// The start of a response body, on one line.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(SNIPPET)]);
    let mut out = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if body.len() > SNIPPET {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retry_after_past_a_year_is_a_year() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, "18446744073709551615".parse().unwrap());
        assert_eq!(
            retry_after(&h, SystemTime::UNIX_EPOCH),
            Some(logalarm_plugin_api::MAX_PERIOD)
        );
    }

    #[test]
    fn reads_retry_after() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h, now), None);
        h.insert(RETRY_AFTER, HeaderValue::from_static("120"));
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(120)));
        // 1_000_000_000 s after the epoch is Sun, 09 Sep 2001 01:46:40 GMT.
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Sun, 09 Sep 2001 01:47:10 GMT"),
        );
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(30)));
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Sun, 09 Sep 2001 01:00:00 GMT"),
        );
        assert_eq!(retry_after(&h, now), Some(Duration::ZERO));
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h, now), None);
    }

    #[test]
    fn snippets_are_one_short_line() {
        assert_eq!(
            snippet(b"  {\"error\":\n \"bad\"}\n"),
            "{\"error\": \"bad\"}"
        );
        assert_eq!(snippet(&[b'x'; 300]).chars().count(), SNIPPET + 1);
    }
}
