//! One logged-in connection: SASL login (RFC 6120 §6), resource binding
//! (§7), then chat messages out and the server's answers in.
//!
//! No presence is sent: the account stays invisible and receives nothing
//! but answers and bounces. Stream management (XEP-0198) is not used; the
//! link confirms messages with pings instead (see [`crate::outbox`]).

use crate::args::Settings;
use crate::connect::{ConnectError, Connector, Stream};
use futures::{SinkExt, StreamExt};
use sasl::common::Credentials;
use std::borrow::Cow;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;
use tokio_xmpp::connect::ServerConnector;
use tokio_xmpp::error::AuthError;
use tokio_xmpp::jid::{FullJid, Jid};
use tokio_xmpp::parsers::bind::{BindQuery, BindResponse};
use tokio_xmpp::parsers::iq::Iq;
use tokio_xmpp::parsers::message::{Id, Lang, Message, MessageType};
use tokio_xmpp::parsers::ns;
use tokio_xmpp::parsers::ping::Ping;
use tokio_xmpp::parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};
use tokio_xmpp::xmlstream::{
    FallibleStreamElement, ReadError, StreamHeader, Timeouts, XmppStream, XmppStreamElement,
};
use tokio_xmpp::{Stanza, client_login};

/// Silence on the connection after which a ping checks that it still lives
/// (a soft timeout), and how long the answer may then take.
pub const TIMEOUTS: Timeouts = Timeouts {
    read_timeout: Duration::from_secs(60),
    response_timeout: Duration::from_secs(20),
};

/// The id prefix of our pings; the number after it orders them.
const PING_ID: &str = "logalarm-ping-";

/// The id of our resource binding request.
const BIND_ID: &str = "logalarm-bind";

/// Why no session could be opened.
#[derive(Debug)]
pub enum OpenError {
    /// The server refused the login (wrong password, unknown account, no
    /// common SASL mechanism), or cannot be trusted (its certificate, no
    /// STARTTLS): retrying with the same settings won't help.
    Refused(String),
    /// Anything else (server down, network, TLS, timeout): worth retrying.
    Failed(String),
}

/// What the server sent that matters to the link.
#[derive(Debug)]
pub enum Incoming {
    /// It answered our ping with this number.
    Answered(u64),
    /// It bounced the message with this notification id for recipient `jid`.
    Bounced {
        /// The notification id.
        id: String,
        /// `jid: condition`.
        what: String,
    },
    /// The connection was silent for a while: send a ping to check it.
    Idle,
    /// The connection is gone (or the server ended the stream).
    Lost(String),
    /// Nothing of interest (a stanza answered or ignored).
    Nothing,
}

/// A logged-in, bound connection.
pub struct Session {
    stream: XmppStream<Stream>,
    /// The server's domain, the target of our pings.
    domain: Jid,
    recipients: Arc<[Jid]>,
}

impl Session {
    /// Connects, logs in and binds a resource.
    ///
    /// # Errors
    /// [`OpenError::Refused`] when the server refused the login or cannot
    /// be trusted,
    /// [`OpenError::Failed`] for anything else. Never contains the password.
    pub async fn open(
        settings: &Settings,
        connector: &Connector,
        recipients: Arc<[Jid]>,
    ) -> Result<(Session, FullJid), OpenError> {
        let account = Jid::from(settings.account.clone());
        let failed = |e: tokio_xmpp::Error| match e {
            // Our own connector's messages say it all; no "connection error: " before them.
            tokio_xmpp::Error::Connection(e) => {
                let error: &(dyn std::error::Error + 'static) = e.as_ref();
                match error.downcast_ref::<ConnectError>() {
                    Some(c) if c.permanent => OpenError::Refused(c.message.clone()),
                    _ => OpenError::Failed(e.to_string()),
                }
            }
            e => OpenError::Failed(e.to_string()),
        };
        let (pending, binding) = connector
            .connect(&account, ns::JABBER_CLIENT, TIMEOUTS)
            .await
            .map_err(failed)?;
        let (features, stream) = pending
            .recv_features::<FallibleStreamElement>()
            .await
            .map_err(|e| failed(e.into()))?;
        let user = settings.account.node().map(|n| n.as_str()).unwrap_or("");
        let credentials = Credentials::default()
            .with_username(user)
            .with_password(settings.password.as_str())
            .with_channel_binding(binding);
        let stream = client_login(stream, features.sasl_mechanisms, credentials)
            .await
            .map_err(|e| match e {
                tokio_xmpp::Error::Auth(AuthError::Fail(condition)) => OpenError::Refused(format!(
                    "the server refused the login of {}: {} (wrong password or unknown account?)",
                    settings.account,
                    condition_name(&condition)
                )),
                tokio_xmpp::Error::Auth(AuthError::NoMechanism) => OpenError::Refused(format!(
                    "no SASL mechanism in common with {} for logging in as {} (over an unencrypted connection, servers offer fewer)",
                    connector.server(),
                    settings.account
                )),
                other => failed(other),
            })?;
        let (_, mut stream) = stream
            .send_header(StreamHeader {
                to: Some(Cow::Borrowed(settings.account.domain().as_str())),
                from: None,
                id: None,
            })
            .await
            .map_err(|e| failed(e.into()))?
            .recv_features::<FallibleStreamElement>()
            .await
            .map_err(|e| failed(e.into()))?;
        let bind = Iq::from_set(BIND_ID, BindQuery::new(settings.resource.clone()));
        stream
            .send(&XmppStreamElement::Stanza(Stanza::Iq(bind)))
            .await
            .map_err(|e| failed(e.into()))?;
        let bound = loop {
            match stream.next().await {
                Some(Ok(FallibleStreamElement::Ok(XmppStreamElement::Stanza(Stanza::Iq(iq)))))
                    if iq.id() == BIND_ID =>
                {
                    break match iq {
                        Iq::Result {
                            payload: Some(payload),
                            ..
                        } => BindResponse::try_from(payload)
                            .map(FullJid::from)
                            .map_err(|e| OpenError::Failed(format!("bad bind answer: {e}")))?,
                        Iq::Error { error, .. } => {
                            return Err(OpenError::Failed(format!(
                                "the server refused to bind resource {:?}: {}",
                                settings.resource.as_deref().unwrap_or("(any)"),
                                condition_name(&error.defined_condition)
                            )));
                        }
                        _ => return Err(OpenError::Failed("bad bind answer".into())),
                    };
                }
                Some(Ok(FallibleStreamElement::Ok(XmppStreamElement::StreamError(e)))) => {
                    return Err(OpenError::Failed(e.to_string()));
                }
                Some(Ok(_) | Err(ReadError::SoftTimeout | ReadError::ParseError(_))) => {}
                Some(Err(ReadError::HardError(e))) => return Err(failed(e.into())),
                Some(Err(ReadError::StreamFooterReceived)) | None => {
                    return Err(OpenError::Failed(
                        "the server closed the stream while binding".into(),
                    ));
                }
            }
        };
        let domain = Jid::from(settings.account.domain().to_owned());
        Ok((
            Session {
                stream,
                domain,
                recipients,
            },
            bound,
        ))
    }

    /// Writes a chat message with `text` to every recipient for each
    /// `(notification id, text)`, then ping number `ping`, and flushes.
    ///
    /// # Errors
    /// The connection failed while writing.
    pub async fn send(&mut self, batch: &[(Arc<str>, Arc<str>)], ping: u64) -> std::io::Result<()> {
        for (id, text) in batch {
            for (k, to) in self.recipients.iter().enumerate() {
                let mut message = Message::new_with_type(MessageType::Chat, Some(to.clone()))
                    .with_body(Lang::new(), text.to_string());
                // The notification id, so that a receiver could recognise a re-sent message.
                message.id = Some(Id(format!("{id}.{k}")));
                self.stream
                    .feed(&XmppStreamElement::Stanza(Stanza::Message(message)))
                    .await?;
            }
        }
        self.ping(ping).await
    }

    /// Writes ping number `ping` (XEP-0199) to the server and flushes.
    ///
    /// # Errors
    /// The connection failed while writing.
    pub async fn ping(&mut self, ping: u64) -> std::io::Result<()> {
        let iq = Iq::from_get(format!("{PING_ID}{ping}"), Ping).with_to(self.domain.clone());
        self.stream
            .feed(&XmppStreamElement::Stanza(Stanza::Iq(iq)))
            .await?;
        SinkExt::<&Stanza>::flush(&mut self.stream).await
    }

    /// Waits for the next thing the server sends, and answers its requests.
    /// Cancel-safe until something arrived.
    pub async fn next(&mut self) -> Incoming {
        let item = match self.stream.next().await {
            None | Some(Err(ReadError::StreamFooterReceived)) => {
                return Incoming::Lost("the server closed the stream".into());
            }
            // TLS reports a vanished server (killed, rebooted) with a long story.
            Some(Err(ReadError::HardError(e))) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Incoming::Lost("the connection broke off, without the stream's end".into());
            }
            Some(Err(ReadError::HardError(e))) => return Incoming::Lost(e.to_string()),
            Some(Err(ReadError::SoftTimeout)) => return Incoming::Idle,
            Some(Err(ReadError::ParseError(e))) => {
                tracing::debug!("xmpp: ignoring an element that does not parse: {e}");
                return Incoming::Nothing;
            }
            Some(Ok(FallibleStreamElement::Err(e))) => {
                tracing::debug!("xmpp: ignoring {e}");
                return Incoming::Nothing;
            }
            Some(Ok(FallibleStreamElement::Ok(item))) => item,
        };
        match item {
            XmppStreamElement::Stanza(Stanza::Iq(iq)) => self.on_iq(iq).await,
            XmppStreamElement::Stanza(Stanza::Message(message))
                if message.type_ == MessageType::Error =>
            {
                self.on_bounce(&message)
            }
            XmppStreamElement::StreamError(e) => Incoming::Lost(e.to_string()),
            _ => Incoming::Nothing,
        }
    }

    async fn on_iq(&mut self, iq: Iq) -> Incoming {
        match iq {
            Iq::Result { id, .. } | Iq::Error { id, .. } => id
                .strip_prefix(PING_ID)
                .and_then(|n| n.parse().ok())
                .map_or(Incoming::Nothing, Incoming::Answered),
            // RFC 6120 §8.2.3: every get/set needs an answer. A ping (XEP-0199) or a
            // roster push (RFC 6121 §2.1.6) gets a result; anything else is unsupported.
            Iq::Get {
                from, id, payload, ..
            }
            | Iq::Set {
                from, id, payload, ..
            } => {
                let fine = payload.is("ping", ns::PING) || payload.is("query", ns::ROSTER);
                let answer = if fine {
                    Iq::Result {
                        from: None,
                        to: from,
                        id,
                        payload: None,
                    }
                } else {
                    Iq::Error {
                        from: None,
                        to: from,
                        id,
                        error: StanzaError::new(
                            ErrorType::Cancel,
                            DefinedCondition::ServiceUnavailable,
                            "en",
                            "logalarm only sends alarms",
                        ),
                        payload: None,
                    }
                };
                match self
                    .stream
                    .send(&XmppStreamElement::Stanza(Stanza::Iq(answer)))
                    .await
                {
                    Ok(()) => Incoming::Nothing,
                    Err(e) => Incoming::Lost(e.to_string()),
                }
            }
        }
    }

    fn on_bounce(&self, message: &Message) -> Incoming {
        let Some((id, k)) = message.id.as_ref().and_then(|i| i.0.rsplit_once('.')) else {
            return Incoming::Nothing;
        };
        let to = k
            .parse::<usize>()
            .ok()
            .and_then(|k| self.recipients.get(k))
            .map_or_else(|| "a recipient".to_owned(), ToString::to_string);
        let condition = message
            .payloads
            .iter()
            .find(|p| p.is("error", ns::DEFAULT_NS))
            .and_then(|p| StanzaError::try_from(p.clone()).ok())
            .map_or_else(
                || "error".to_owned(),
                |e| condition_name(&e.defined_condition),
            );
        Incoming::Bounced {
            id: id.to_owned(),
            what: format!("{to}: {condition}"),
        }
    }

    /// Ends the stream politely (`</stream:stream>`), within `limit`.
    pub async fn close(mut self, limit: Duration) {
        let _ = tokio::time::timeout(limit, SinkExt::<&Stanza>::close(&mut self.stream)).await;
    }
}

/// An XMPP condition as the protocol spells it (`not-authorized`,
/// `service-unavailable`), from its Rust name.
fn condition_name(condition: &impl Debug) -> String {
    let debug = format!("{condition:?}");
    let name = debug.split('(').next().unwrap_or(&debug);
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_are_spelled_as_in_the_protocol() {
        assert_eq!(
            condition_name(&tokio_xmpp::parsers::sasl::DefinedCondition::NotAuthorized),
            "not-authorized"
        );
        assert_eq!(
            condition_name(&DefinedCondition::ServiceUnavailable),
            "service-unavailable"
        );
    }
}
