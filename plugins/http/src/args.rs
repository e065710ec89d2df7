//! The settings of one `http:` alarm: uWSGI's `URL;key=val;…` arguments and
//! the alarm's TOML keys, checked once at config load.

use logalarm_plugin_api::{BuildContext, MAX_PERIOD, MAX_PERIOD_TEXT, resolve_secret};
use logalarm_template::Template;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Url};
use std::collections::BTreeMap;
use std::time::Duration;

/// uWSGI's default for both timeouts (its `socket-timeout`, 4 s).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(4);

/// The keys of `URL;key=val;…`, as uWSGI's curl alarm has them for HTTP.
const ARG_KEYS: [&str; 7] = [
    "url",
    "method",
    "auth_user",
    "auth_pass",
    "timeout",
    "conn_timeout",
    "ssl_insecure",
];

/// uWSGI's curl keys that only mean something for mail.
const MAIL_KEYS: [&str; 4] = ["mail_from", "mail_to", "subject", "ssl"];

/// The TOML keys the plugin takes (`timeout` is the engine's, given as
/// [`BuildContext::timeout`]; the URL is in the action).
pub const TOML_KEYS: [&str; 7] = [
    "method",
    "auth_user",
    "auth_pass",
    "conn_timeout",
    "ssl_insecure",
    "body",
    "headers",
];

/// Everything a request needs, checked.
pub struct Settings {
    /// Where to send it (http or https).
    pub url: Url,
    /// The method, POST unless set.
    pub method: Method,
    /// Basic authentication: user and (resolved) password.
    pub auth: Option<(String, String)>,
    /// The whole request's time limit, connecting included.
    pub timeout: Duration,
    /// The time limit of connecting (TCP and TLS).
    pub conn_timeout: Duration,
    /// Skip certificate verification (`ssl_insecure`).
    pub insecure: bool,
    /// Content-Type (text/plain unless set) and the configured headers.
    pub headers: HeaderMap,
    /// The body template; the message and a newline when `None`.
    pub body: Option<Template>,
}

/// Where a key was given.
#[derive(Clone, Copy, PartialEq, Eq)]
enum From {
    Args,
    Toml,
}

/// `key=value`, or `None` for a token without `=` or a URL (whose query may
/// hold `=`: uWSGI needs `url=` for those; here it is not needed).
fn key_value(token: &str) -> Option<(&str, &str)> {
    token
        .split_once('=')
        .filter(|(key, _)| !key.contains("://"))
}

/// Splits `URL;key=val;…` as uWSGI does (at `;`; the first token without `=`
/// is the URL), then adds the TOML keys. Empty tokens are skipped; a bare
/// `ssl_insecure` means `ssl_insecure=true`.
fn collect(
    ctx: &BuildContext,
    args: &str,
) -> Result<BTreeMap<&'static str, (String, From)>, String> {
    let mut keys: BTreeMap<&'static str, (String, From)> = BTreeMap::new();
    for token in args.split(';') {
        if token.trim().is_empty() {
            continue;
        }
        let (key, value) = match key_value(token) {
            Some((key, value)) => (key.trim(), value),
            None if token.trim() == "ssl_insecure" => ("ssl_insecure", "true"),
            None if !keys.contains_key("url") => ("url", token.trim()),
            None => {
                return Err(format!(
                    "{:?} is neither the URL (given already) nor key=value",
                    token.trim()
                ));
            }
        };
        let Some(known) = ARG_KEYS.iter().find(|k| **k == key) else {
            return Err(unknown_key(key));
        };
        if keys.insert(known, (value.to_owned(), From::Args)).is_some() {
            return Err(format!("`{key}` is given twice; keep one"));
        }
    }
    let toml = ctx
        .options
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .chain(
            ctx.timeout
                .map(|t| ("timeout", format!("{}ms", t.as_millis()))),
        );
    for (key, value) in toml {
        if key == "body" {
            continue;
        }
        let Some(known) = ARG_KEYS.iter().find(|k| **k == key) else {
            return Err(unknown_key(key));
        };
        if keys.insert(known, (value, From::Toml)).is_some() {
            return Err(format!(
                "`{key}` is both in the action and a key of the alarm; keep one"
            ));
        }
    }
    Ok(keys)
}

fn unknown_key(key: &str) -> String {
    if MAIL_KEYS.contains(&key) {
        format!("`{key}` is for mail (smtp:// URLs), not for http(s)")
    } else {
        format!(
            "unknown key `{key}`; an http(s) alarm takes {}",
            ARG_KEYS.join(", ")
        )
    }
}

/// A time limit: seconds (`4`, `0.5`, as uWSGI's whole seconds) or a
/// duration (`500ms`, `2s`), above 0 and at most
/// [`MAX_PERIOD`](logalarm_plugin_api::MAX_PERIOD) (365 days).
fn duration(key: &str, value: &str) -> Result<Duration, String> {
    let value = value.trim();
    let parsed = match value.parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs >= 0.0 => Duration::try_from_secs_f64(secs).ok(),
        Ok(_) => None,
        Err(_) => humantime::parse_duration(value).ok(),
    };
    match parsed {
        Some(d) if d > MAX_PERIOD => Err(format!(
            "`{key}` = {value:?} is longer than {MAX_PERIOD_TEXT}, the longest time limit logalarm takes; write one from 1ms to {MAX_PERIOD_TEXT}"
        )),
        Some(d) if !d.is_zero() => Ok(d),
        Some(_) => Err(format!("`{key}` must be more than 0")),
        None => Err(format!(
            "`{key}` = {value:?} is not a duration; write seconds (4) or e.g. \"500ms\""
        )),
    }
}

fn flag(key: &str, value: &str) -> Result<bool, String> {
    match value.trim() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        other => Err(format!("`{key}` = {other:?}: write true or false")),
    }
}

/// Checks the arguments and keys of an alarm and builds its settings.
///
/// # Errors
/// What is wrong, naming the key; never a secret's value.
pub fn settings(ctx: &BuildContext, args: &str) -> Result<Settings, String> {
    let mut keys = collect(ctx, args)?;
    let Some((url, _)) = keys.remove("url") else {
        return Err("no URL; write e.g. http:https://hooks.example.com/alarm;method=POST".into());
    };
    // The URL's text may hold a password: errors never repeat it.
    let url = Url::parse(url.trim()).map_err(|e| format!("the URL does not parse: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "the URL's scheme is {:?}; this action sends to http:// or https:// URLs",
            url.scheme()
        ));
    }
    if url.host().is_none() {
        return Err("the URL has no host".into());
    }
    let method = match keys.remove("method") {
        None => Method::POST,
        Some((m, _)) => Method::from_bytes(m.trim().to_ascii_uppercase().as_bytes())
            .map_err(|_| format!("`method` = {m:?} is not an HTTP method"))?,
    };
    let user = keys.remove("auth_user").map(|(u, _)| u);
    let pass = match keys.remove("auth_pass") {
        None => None,
        Some((p, _)) => Some(resolve_secret(&p).map_err(|e| format!("`auth_pass`: {e}"))?),
    };
    if url.password().is_some() && pass.is_some() {
        return Err("the URL holds a password and `auth_pass` gives one too; keep one".into());
    }
    let auth = match (user, pass) {
        (Some(user), pass) => Some((user, pass.unwrap_or_default())),
        (None, Some(_)) => return Err("`auth_pass` without `auth_user`; add auth_user=NAME".into()),
        (None, None) => None,
    };
    let timeout = match keys.remove("timeout") {
        None => DEFAULT_TIMEOUT,
        Some((t, _)) => duration("timeout", &t)?,
    };
    let conn_timeout = match keys.remove("conn_timeout") {
        None => DEFAULT_TIMEOUT,
        Some((t, _)) => duration("conn_timeout", &t)?,
    };
    let insecure = match keys.remove("ssl_insecure") {
        None => false,
        Some((v, _)) => flag("ssl_insecure", &v)?,
    };
    let mut headers = HeaderMap::new();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    for (name, value) in &ctx.headers {
        let header = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("headers: {name:?} is not a header name"))?;
        let secret = value.starts_with("env:") || value.starts_with("file:");
        let resolved = resolve_secret(value).map_err(|e| format!("headers: {name}: {e}"))?;
        let mut value = HeaderValue::from_str(&resolved).map_err(|_| {
            format!("headers: the value of {name} is not a valid header value (line breaks, control characters)")
        })?;
        value.set_sensitive(secret || header == reqwest::header::AUTHORIZATION);
        headers.insert(header, value);
    }
    let body = ctx
        .options
        .get("body")
        .map(|source| Template::compile("body", source))
        .transpose()?;
    Ok(Settings {
        url,
        method,
        auth,
        timeout,
        conn_timeout,
        insecure,
        headers,
        body,
    })
}

/// `args` with secrets replaced by `***`: the value of `auth_pass`, and a
/// password in the URL (`https://user:***@host/`). Works on arguments that do
/// not parse too, so that no error path can show a secret.
pub fn redact(args: &str) -> String {
    let mut url_seen = false;
    args.split(';')
        .map(|token| match key_value(token) {
            Some((key, _)) if key.trim() == "auth_pass" => format!("{key}=***"),
            Some((key, url)) if key.trim() == "url" => format!("{key}={}", redact_url(url)),
            Some(_) => token.to_owned(),
            None if !url_seen && !token.trim().is_empty() && token.trim() != "ssl_insecure" => {
                url_seen = true;
                redact_url(token)
            }
            None => token.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(";")
}

/// A URL as written, with the password of its user info (if any) replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    let userinfo = &authority[..at];
    let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
    if user.len() == userinfo.len() {
        return url.to_owned();
    }
    format!(
        "{}{user}:***{}",
        &url[..scheme_end],
        &url[scheme_end + at..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> BuildContext {
        BuildContext {
            alarm: "a".into(),
            ..BuildContext::default()
        }
    }

    #[test]
    fn reads_uwsgi_forms() {
        let s = settings(
            &ctx(),
            "http://127.0.0.1:8080/hook;auth_user=foo;auth_pass=bar",
        )
        .unwrap();
        assert_eq!(s.url.as_str(), "http://127.0.0.1:8080/hook");
        assert_eq!(s.method, Method::POST);
        assert_eq!(s.auth, Some(("foo".into(), "bar".into())));
        assert_eq!(
            (s.timeout, s.conn_timeout),
            (DEFAULT_TIMEOUT, DEFAULT_TIMEOUT)
        );
        assert!(!s.insecure);
        let s = settings(
            &ctx(),
            "https://127.0.0.1/;method=put;ssl_insecure=true;timeout=10;conn_timeout=250ms",
        )
        .unwrap();
        assert_eq!(s.method, Method::PUT);
        assert!(s.insecure);
        assert_eq!(s.timeout, Duration::from_secs(10));
        assert_eq!(s.conn_timeout, Duration::from_millis(250));
        let s = settings(&ctx(), "url=http://h/;ssl_insecure").unwrap();
        assert!(s.insecure);
        let s = settings(&ctx(), "http://h/?a=1&b=2;method=GET").unwrap();
        assert_eq!(s.url.as_str(), "http://h/?a=1&b=2");
    }

    #[test]
    fn toml_keys_and_headers() {
        let mut c = ctx();
        c.options.insert("method".into(), "PATCH".into());
        c.options
            .insert("body".into(), "{{ line | tojson }}".into());
        c.timeout = Some(Duration::from_millis(1500));
        c.headers = vec![
            ("Content-Type".into(), "application/json".into()),
            ("X-Team".into(), "ops".into()),
        ];
        let s = settings(&c, "http://h/").unwrap();
        assert_eq!(s.method, Method::PATCH);
        assert_eq!(s.timeout, Duration::from_millis(1500));
        assert_eq!(s.headers["content-type"], "application/json");
        assert_eq!(s.headers["x-team"], "ops");
        assert!(s.body.is_some());
        c.options.insert("body".into(), "{{ nope }}".into());
        assert!(
            settings(&c, "http://h/")
                .err()
                .unwrap()
                .starts_with("`body` template")
        );
    }

    #[test]
    fn errors_say_what_to_do_and_hide_secrets() {
        let err = |args: &str| settings(&ctx(), args).err().unwrap();
        assert!(err("").starts_with("no URL"));
        assert!(err("ftp://h/").contains("\"ftp\""));
        assert!(err("http://h/;mail_to=a@b").contains("smtp://"));
        assert!(err("http://h/;colour=red").starts_with("unknown key `colour`"));
        assert!(err("http://h/;method=GET;method=PUT").contains("twice"));
        assert!(err("http://h/;auth_pass=s3cret").contains("auth_user"));
        assert!(err("http://h/;timeout=soon").contains("`timeout`"));
        assert!(err("http://h/;timeout=0").contains("more than 0"));
        assert!(err("http://h/;ssl_insecure=maybe").contains("true or false"));
        let e = err("http://u:s3cret@h/;auth_pass=other");
        assert!(!e.contains("s3cret") && !e.contains("other"), "{e}");
        let e = err("http://u:s3cret@h:port/");
        assert!(!e.contains("s3cret"), "{e}");
        let mut c = ctx();
        c.options.insert("method".into(), "PUT".into());
        assert!(
            settings(&c, "http://h/;method=POST")
                .err()
                .unwrap()
                .contains("keep one")
        );
        let e = settings(
            &ctx(),
            "http://h/;auth_user=u;auth_pass=env:LOGALARM_NO_SUCH_VAR",
        )
        .err()
        .unwrap();
        assert!(e.contains("LOGALARM_NO_SUCH_VAR"), "{e}");
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact("https://h/x;auth_user=u;auth_pass=s3cret;method=POST"),
            "https://h/x;auth_user=u;auth_pass=***;method=POST"
        );
        assert_eq!(
            redact("https://u:s3cret@h:8443/p?q=1;ssl_insecure=true"),
            "https://u:***@h:8443/p?q=1;ssl_insecure=true"
        );
        assert_eq!(redact("url=http://u:p@h/"), "url=http://u:***@h/");
        assert_eq!(redact("http://u@h/"), "http://u@h/");
        assert_eq!(redact("http://h/a@b"), "http://h/a@b");
    }
}
