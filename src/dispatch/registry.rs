//! The action plugins compiled into this build (cargo features `cmd`,
//! `signal`, `log`, `smtp`, `xmpp`, as uWSGI's build profiles choose its plugins).

use logalarm_plugin_api::Plugin;

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
        #[cfg(feature = "xmpp")]
        Box::new(logalarm_plugin_xmpp::XmppPlugin),
    ]
}

/// Plugins uWSGI has that this build lacks, with what to use meanwhile.
pub fn missing_hint(name: &str) -> Option<&'static str> {
    match name {
        "curl" | "http" | "https" => Some(
            "network actions are not in this build yet; meanwhile use cmd: with curl(1), mail(1) or sendxmpp(1)",
        ),
        "smtp" => Some("this build lacks the smtp feature; rebuild with --features smtp"),
        "xmpp" => Some("this build lacks the xmpp feature; rebuild with --features xmpp"),
        "mule" => Some("mules exist only inside uWSGI; use cmd: or signal: instead"),
        _ => None,
    }
}
