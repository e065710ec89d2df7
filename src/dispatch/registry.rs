//! The action plugins compiled into this build (cargo features `cmd`,
//! `signal`, `log`, `http`, `smtp`, `xmpp`, as uWSGI's build profiles choose
//! its plugins), and uWSGI's `curl:`, which is one name for two plugins: it goes by
//! the URL's scheme to `http` (http://, https://) or to `smtp` (smtp://, smtps://).

use logalarm_plugin_api::{Action, BuildContext, Plugin};

/// Every plugin in this build.
pub fn plugins() -> Vec<Box<dyn Plugin>> {
    vec![
        #[cfg(feature = "cmd")]
        Box::new(logalarm_plugin_cmd::CmdPlugin),
        #[cfg(feature = "signal")]
        Box::new(logalarm_plugin_signal::SignalPlugin),
        #[cfg(feature = "log")]
        Box::new(logalarm_plugin_log::LogPlugin),
        #[cfg(feature = "smtp")]
        Box::new(logalarm_plugin_smtp::SmtpPlugin),
        #[cfg(feature = "http")]
        Box::new(logalarm_plugin_http::HttpPlugin),
        #[cfg(feature = "xmpp")]
        Box::new(logalarm_plugin_xmpp::XmppPlugin),
        Box::new(Curl),
    ]
}

/// Plugins uWSGI has that this build lacks, with what to use meanwhile.
pub fn missing_hint(name: &str) -> Option<&'static str> {
    match name {
        #[cfg(not(feature = "http"))]
        "http" | "https" => Some(
            "this build has no http plugin (cargo feature `http`); meanwhile use cmd: with curl(1)",
        ),
        #[cfg(feature = "http")]
        "https" => Some("write http:https://HOST/PATH (the plugin is http, for both schemes)"),
        "xmpp" => Some("this build lacks the xmpp feature; rebuild with --features xmpp"),
        "smtp" | "smtps" => Some(
            "this build lacks the smtp feature; rebuild with --features smtp (smtps:// URLs go to smtp:)",
        ),
        "mule" => Some("mules exist only inside uWSGI; use cmd: or signal: instead"),
        _ => None,
    }
}

/// uWSGI's `curl:URL;key=val;…`: built by the plugin of the URL's scheme.
struct Curl;

/// What `curl:` hands a URL with this scheme to, if this build has it.
fn curl_target(args: &str) -> Result<Box<dyn Plugin>, String> {
    let first = args.split(';').next().unwrap_or("").trim();
    // uWSGI also takes the URL as `url=…` anywhere in the list.
    let url = args
        .split(';')
        .find_map(|t| t.trim().strip_prefix("url="))
        .unwrap_or(first);
    let scheme = url
        .split_once("://")
        .map(|(s, _)| s.to_ascii_lowercase())
        .unwrap_or_default();
    match scheme.as_str() {
        #[cfg(feature = "http")]
        "http" | "https" => Ok(Box::new(logalarm_plugin_http::HttpPlugin)),
        #[cfg(not(feature = "http"))]
        "http" | "https" => Err(
            "this build has no http plugin (cargo feature `http`); meanwhile use cmd: with curl(1)"
                .into(),
        ),
        #[cfg(feature = "smtp")]
        "smtp" | "smtps" => Ok(Box::new(logalarm_plugin_smtp::SmtpPlugin)),
        #[cfg(not(feature = "smtp"))]
        "smtp" | "smtps" => Err(
            "this build has no smtp plugin (cargo feature `smtp`); meanwhile use cmd: with mail(1)"
                .into(),
        ),
        "" => Err(
            "curl: needs a URL first: curl:https://HOST/PATH;key=val or curl:smtp://HOST;mail_to=…"
                .into(),
        ),
        other => Err(format!(
            "curl: URL scheme {other:?} is not supported; use http://, https://, smtp:// or smtps://"
        )),
    }
}

impl Plugin for Curl {
    fn name(&self) -> &'static str {
        "curl"
    }

    fn redact(&self, args: &str) -> String {
        match curl_target(args) {
            Ok(plugin) => plugin.redact(args),
            // Never built, so never shown; hide everything after the URL anyway.
            Err(_) => args.split(';').next().unwrap_or("").to_owned() + ";…",
        }
    }

    fn options(&self) -> &'static [&'static str] {
        // The union of what the targets take; each target checks its own.
        static UNION: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
            let mut keys: Vec<&'static str> = Vec::new();
            #[cfg(feature = "http")]
            keys.extend(logalarm_plugin_http::HttpPlugin.options());
            #[cfg(feature = "smtp")]
            keys.extend(logalarm_plugin_smtp::SmtpPlugin.options());
            keys.sort_unstable();
            keys.dedup();
            keys
        });
        &UNION
    }

    fn retries(&self) -> bool {
        true
    }

    fn build(&self, ctx: &BuildContext, args: &str) -> Result<Box<dyn Action>, String> {
        curl_target(args)?.build(ctx, args)
    }
}
