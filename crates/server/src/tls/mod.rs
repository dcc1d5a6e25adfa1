//! HTTPS: the server's own certificate, and client certificates of applications (mutual TLS,
//! RFC 8705).
//!
//! With `cert` and `key` the server speaks TLS (rustls on the ring provider). With
//! `client_ca` it asks every client for a certificate, but does not insist (citizens'
//! browsers and sandbox apps have none) and does not refuse an unknown one at the TLS level:
//! the handshake still proves the client holds the certificate's key, and the certificate's
//! chain is checked against the trusted issuers per request ([`client`]), where a refusal can
//! say why in an OAuth error or an OperationOutcome. Behind a TLS-terminating proxy the
//! certificate may instead come in a configured header, believed only from the trusted
//! proxies.
//!
//! Handshakes run in tasks of their own with a time limit, so a client that never completes
//! one holds up nobody else.

pub mod client;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use client::{ClientCertificates, OptionalClientCertificate};
use phr_auth::PresentedCertificate;

/// Longest time a client may take to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections whose handshake is complete, waiting to be served.
const HANDSHAKEN_QUEUE: usize = 128;

/// The `[tls]` table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file with the server's certificate chain, its own certificate first.
    pub cert: Option<PathBuf>,
    /// PEM file with the server certificate's private key.
    pub key: Option<PathBuf>,
    /// PEM bundle of the trusted issuers of application (client) certificates.
    pub client_ca: Option<PathBuf>,
    /// A request header in which a TLS-terminating proxy passes the client certificate
    /// (URL-encoded PEM, as nginx's `$ssl_client_escaped_cert`). Believed only from the
    /// configured `trusted_proxies`.
    pub client_certificate_header: Option<String>,
}

impl TlsConfig {
    /// Whether the server itself speaks TLS.
    pub fn enabled(&self) -> bool {
        self.cert.is_some()
    }

    /// Whether client certificates are read at all (over TLS, or from a proxy's header).
    pub fn reads_client_certificates(&self) -> bool {
        self.client_ca.is_some()
    }

    pub fn check(&self) -> Result<(), String> {
        if self.cert.is_some() != self.key.is_some() {
            return Err(
                "tls: give both the certificate (--tls-cert) and its key (--tls-key)".into(),
            );
        }
        if let Some(header) = &self.client_certificate_header {
            if axum::http::HeaderName::from_bytes(header.as_bytes()).is_err() {
                return Err(format!(
                    "tls: client_certificate_header {header:?} is not a header name"
                ));
            }
            if self.client_ca.is_none() {
                return Err(
                    "tls: client_certificate_header needs the trusted issuers (client_ca)".into(),
                );
            }
        }
        if self.client_ca.is_some() && !self.enabled() && self.client_certificate_header.is_none() {
            return Err(
                "tls: client certificates (--client-ca) need TLS (--tls-cert, --tls-key) or a proxy's client_certificate_header".into(),
            );
        }
        Ok(())
    }
}

/// Why TLS cannot be set up.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TlsError(pub String);

fn read_certificates(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certificates = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError(format!("{what} {}: {e}", path.display())))?;
    if certificates.is_empty() {
        return Err(TlsError(format!(
            "{what} {}: no PEM certificate in it",
            path.display()
        )));
    }
    Ok(certificates)
}

/// The trusted issuers of application certificates in `config`, if any.
pub fn client_certificates(config: &TlsConfig) -> Result<Option<ClientCertificates>, TlsError> {
    let Some(path) = &config.client_ca else {
        return Ok(None);
    };
    let issuers = read_certificates(path, "client_ca")?;
    ClientCertificates::new(issuers, config.client_certificate_header.as_deref()).map(Some)
}

/// The TLS acceptor of `config`, if it has a certificate: asking for (not requiring) client
/// certificates when `clients` is set.
pub fn acceptor(
    config: &TlsConfig,
    clients: Option<&ClientCertificates>,
) -> Result<Option<TlsAcceptor>, TlsError> {
    let (Some(cert), Some(key)) = (&config.cert, &config.key) else {
        return Ok(None);
    };
    let chain = read_certificates(cert, "tls cert")?;
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| TlsError(format!("tls key {}: {e}", key.display())))?;
    let verifier: Arc<dyn ClientCertVerifier> = match clients {
        Some(clients) => Arc::new(OptionalClientCertificate::new(clients.verifier())),
        None => WebPkiClientVerifier::no_client_auth(),
    };
    let mut server = ServerConfig::builder_with_provider(client::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError(format!("tls: {e}")))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| TlsError(format!("tls cert and key: {e}")))?;
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(TlsAcceptor::from(Arc::new(server))))
}

/// The far end of a TLS connection: its address and the client certificate it presented.
#[derive(Debug, Clone)]
pub struct Peer {
    pub address: SocketAddr,
    pub certificate: Option<Arc<PresentedCertificate>>,
}

impl Connected<IncomingStream<'_, TlsListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, TlsListener>) -> Self {
        stream.remote_addr().clone()
    }
}

/// A listener handing out connections whose TLS handshake is complete.
pub struct TlsListener {
    local: SocketAddr,
    handshaken: mpsc::Receiver<(TlsStream<TcpStream>, Peer)>,
    accepting: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    pub fn new(
        listener: TcpListener,
        acceptor: TlsAcceptor,
        clients: Option<Arc<ClientCertificates>>,
    ) -> std::io::Result<TlsListener> {
        let local = listener.local_addr()?;
        let (sender, handshaken) = mpsc::channel(HANDSHAKEN_QUEUE);
        let accepting = tokio::spawn(accept_connections(listener, acceptor, clients, sender));
        Ok(TlsListener {
            local,
            handshaken,
            accepting,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        // The server stopped accepting: so does the socket.
        self.accepting.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = Peer;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.handshaken.recv().await {
            Some(connection) => connection,
            // The accepting task ended (it only does when aborted): nothing more comes.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(Peer {
            address: self.local,
            certificate: None,
        })
    }
}

async fn accept_connections(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    clients: Option<Arc<ClientCertificates>>,
    handshaken: mpsc::Sender<(TlsStream<TcpStream>, Peer)>,
) {
    loop {
        let (tcp, address) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: wait a moment rather than spin.
                tracing::warn!(error = %e, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (acceptor, clients, handshaken) =
            (acceptor.clone(), clients.clone(), handshaken.clone());
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    tracing::debug!(peer = %address, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(peer = %address, "TLS handshake timed out");
                    return;
                }
            };
            let certificate = match (&clients, stream.get_ref().1.peer_certificates()) {
                (Some(clients), Some(chain)) => clients.examine(chain).map(Arc::new),
                _ => None,
            };
            let _ = handshaken
                .send((
                    stream,
                    Peer {
                        address,
                        certificate,
                    },
                ))
                .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_that_do_not_fit_together_are_refused() {
        let path = |p: &str| Some(PathBuf::from(p));
        let ok = [
            TlsConfig::default(),
            TlsConfig {
                cert: path("c"),
                key: path("k"),
                ..TlsConfig::default()
            },
            TlsConfig {
                cert: path("c"),
                key: path("k"),
                client_ca: path("ca"),
                ..TlsConfig::default()
            },
            TlsConfig {
                client_ca: path("ca"),
                client_certificate_header: Some("X-SSL-Client-Cert".into()),
                ..TlsConfig::default()
            },
        ];
        for config in ok {
            assert_eq!(config.check(), Ok(()), "{config:?}");
        }
        let bad = [
            TlsConfig {
                cert: path("c"),
                ..TlsConfig::default()
            },
            TlsConfig {
                client_ca: path("ca"),
                ..TlsConfig::default()
            },
            TlsConfig {
                client_certificate_header: Some("X-SSL-Client-Cert".into()),
                ..TlsConfig::default()
            },
            TlsConfig {
                client_ca: path("ca"),
                client_certificate_header: Some("bad header".into()),
                ..TlsConfig::default()
            },
        ];
        for config in bad {
            assert!(config.check().is_err(), "{config:?}");
        }
    }
}
