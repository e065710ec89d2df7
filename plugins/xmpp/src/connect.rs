//! Opening the XML stream to the server: TCP to `host:port`, then STARTTLS
//! (RFC 6120 §5) with rustls unless `tls=no`.
//!
//! tokio-xmpp's own connectors resolve DNS SRV records with hickory-resolver
//! and always verify certificates against the system's CA store; this one
//! connects to the configured host (getaddrinfo, no SRV) and can accept any
//! certificate (`tls=insecure`, what uWSGI's gloox client does), which keeps
//! the DNS resolver out of the build.

use crate::args::{Settings, Tls};
use futures::{SinkExt, StreamExt};
use sasl::common::ChannelBinding;
use std::borrow::Cow;
use std::sync::Arc;
use tokio::io::BufStream;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::{CryptoProvider, ring};
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{
    self, ClientConfig, DigitallySignedStruct, ProtocolVersion, RootCertStore, SignatureScheme,
};
use tokio_xmpp::connect::{AsyncReadAndWrite, ServerConnector};
use tokio_xmpp::jid::Jid;
use tokio_xmpp::parsers::starttls;
use tokio_xmpp::xmlstream::{
    FallibleStreamElement, PendingFeaturesRecv, ReadError, StreamHeader, Timeouts,
    XmppStreamElement, initiate_stream,
};

/// Any stream the connector produces: plain TCP or TLS over TCP.
pub type Stream = Box<dyn AsyncReadAndWrite + Send + 'static>;

/// Connects to one configured server; cheap to clone (tokio-xmpp clones it
/// for each login).
#[derive(Clone)]
pub struct Connector {
    host: Arc<str>,
    port: u16,
    /// `None` for `tls=no`.
    tls: Option<Arc<ClientConfig>>,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Connector({}:{})", self.host, self.port)
    }
}

/// Why the connection could not be made (before any login).
#[derive(Debug)]
pub struct ConnectError {
    /// What went wrong, for messages.
    pub message: String,
    /// Retrying with the same settings won't help (the server's certificate
    /// is not trusted, the server offers no STARTTLS).
    pub permanent: bool,
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConnectError {}
impl tokio_xmpp::connect::ServerConnectorError for ConnectError {}

fn failed(message: String) -> tokio_xmpp::Error {
    tokio_xmpp::Error::Connection(Box::new(ConnectError {
        message,
        permanent: false,
    }))
}

fn refused(message: String) -> tokio_xmpp::Error {
    tokio_xmpp::Error::Connection(Box::new(ConnectError {
        message,
        permanent: true,
    }))
}

impl Connector {
    /// A connector for the server in `settings`. Reads the system's CA
    /// certificates (rustls-native-certs: `/etc/ssl/certs`, or `SSL_CERT_FILE`
    /// / `SSL_CERT_DIR`) when certificates are to be verified.
    ///
    /// # Errors
    /// rustls refuses the TLS configuration (it does not with its ring
    /// provider, which supports TLS 1.2 and 1.3).
    pub fn new(settings: &Settings) -> Result<Connector, String> {
        // An explicit provider, so that another rustls backend enabled elsewhere in
        // the build never leaves the choice ambiguous.
        let provider = Arc::new(ring::default_provider());
        let tls = match settings.tls {
            Tls::No => None,
            Tls::Required => {
                let mut roots = RootCertStore::empty();
                let found = rustls_native_certs::load_native_certs();
                for e in &found.errors {
                    tracing::warn!("xmpp: reading the system's CA certificates: {e}");
                }
                roots.add_parsable_certificates(found.certs);
                if roots.is_empty() {
                    tracing::warn!(
                        "xmpp: no CA certificates found on this system (install ca-certificates); the server's certificate cannot be verified"
                    );
                }
                Some(config(provider, |b| b.with_root_certificates(roots))?)
            }
            Tls::Insecure => {
                let verifier = Arc::new(AnyCertificate(provider.clone()));
                Some(config(provider, |b| {
                    b.dangerous().with_custom_certificate_verifier(verifier)
                })?)
            }
        };
        Ok(Connector {
            host: settings.host.as_str().into(),
            port: settings.port,
            tls,
        })
    }

    /// `host:port`, for messages.
    pub fn server(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// TCP to the first address of `host` that accepts.
    async fn tcp(&self) -> Result<TcpStream, tokio_xmpp::Error> {
        let addrs = tokio::net::lookup_host((&*self.host, self.port))
            .await
            .map_err(|e| failed(format!("cannot resolve {}: {e}", self.host)))?;
        let mut last = None;
        for addr in addrs {
            match TcpStream::connect(addr).await {
                Ok(tcp) => {
                    // Alarms are small and should leave at once.
                    let _ = tcp.set_nodelay(true);
                    return Ok(tcp);
                }
                Err(e) => last = Some(format!("cannot connect to {addr}: {e}")),
            }
        }
        Err(failed(
            last.unwrap_or_else(|| format!("{} has no address", self.host)),
        ))
    }
}

type Builder = rustls::ConfigBuilder<ClientConfig, rustls::WantsVerifier>;

fn config(
    provider: Arc<CryptoProvider>,
    verify: impl FnOnce(Builder) -> rustls::ConfigBuilder<ClientConfig, rustls::client::WantsClientCert>,
) -> Result<Arc<ClientConfig>, String> {
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("xmpp: cannot set up TLS: {e}"))?;
    Ok(Arc::new(verify(builder).with_no_client_auth()))
}

impl ServerConnector for Connector {
    type Stream = Stream;

    async fn connect(
        &self,
        jid: &Jid,
        ns: &'static str,
        timeouts: Timeouts,
    ) -> Result<(PendingFeaturesRecv<Stream>, ChannelBinding), tokio_xmpp::Error> {
        let domain = jid.domain().as_str();
        let header = || StreamHeader {
            to: Some(Cow::Borrowed(domain)),
            from: None,
            id: None,
        };
        let tcp = self.tcp().await?;
        let Some(tls) = &self.tls else {
            let stream: Stream = Box::new(BufStream::new(tcp));
            return Ok((
                initiate_stream(stream, ns, header(), timeouts).await?,
                ChannelBinding::None,
            ));
        };
        let plain = initiate_stream(BufStream::new(tcp), ns, header(), timeouts).await?;
        let (features, mut plain) = plain.recv_features::<FallibleStreamElement>().await?;
        if !features.can_starttls() {
            return Err(refused(format!(
                "{} offers no STARTTLS; to send the password and messages unencrypted anyway (loopback only), add ;tls=no",
                self.server()
            )));
        }
        plain
            .send(&XmppStreamElement::Starttls(starttls::Nonza::Request(
                starttls::Request,
            )))
            .await?;
        loop {
            match plain.next().await {
                Some(Ok(FallibleStreamElement::Ok(XmppStreamElement::Starttls(
                    starttls::Nonza::Proceed(_),
                )))) => break,
                Some(Ok(FallibleStreamElement::Ok(XmppStreamElement::Starttls(
                    starttls::Nonza::Failure(_),
                )))) => return Err(failed(format!("{} refused STARTTLS", self.server()))),
                Some(Ok(_) | Err(ReadError::SoftTimeout | ReadError::ParseError(_))) => {}
                Some(Err(ReadError::HardError(e))) => return Err(e.into()),
                Some(Err(ReadError::StreamFooterReceived)) | None => {
                    return Err(tokio_xmpp::Error::Disconnected);
                }
            }
        }
        let tcp = plain.into_inner().into_inner();
        let name = ServerName::try_from(domain.to_owned())
            .map_err(|e| failed(format!("{domain:?} is not a valid TLS server name: {e}")))?;
        let tls = TlsConnector::from(tls.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| {
                let untrusted = e
                    .get_ref()
                    .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                    .is_some_and(|t| matches!(t, rustls::Error::InvalidCertificate(_)));
                let message = format!("TLS with {} for {domain}: {e}", self.server());
                if untrusted {
                    refused(format!(
                        "{message} (the server's certificate is not trusted: fix it, or accept any with ;tls=insecure)"
                    ))
                } else {
                    failed(message)
                }
            })?;
        let binding = channel_binding(&tls);
        let stream: Stream = Box::new(BufStream::new(tls));
        Ok((
            initiate_stream(stream, ns, header(), timeouts).await?,
            binding,
        ))
    }
}

/// RFC 9266 `tls-exporter` channel binding for SCRAM-…-PLUS on TLS 1.3 (as
/// tokio-xmpp's own connectors do); none on older versions.
fn channel_binding(tls: &tokio_rustls::client::TlsStream<TcpStream>) -> ChannelBinding {
    let (_, connection) = tls.get_ref();
    if connection.protocol_version() != Some(ProtocolVersion::TLSv1_3) {
        return ChannelBinding::None;
    }
    match connection.export_keying_material(vec![0u8; 32], b"EXPORTER-Channel-Binding", None) {
        Ok(data) => ChannelBinding::TlsExporter(data),
        Err(_) => ChannelBinding::None,
    }
}

/// `tls=insecure`: accepts any certificate chain, but still checks that the
/// server holds the key of the certificate it shows (the handshake signature).
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
