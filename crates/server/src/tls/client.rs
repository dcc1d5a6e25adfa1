//! Client certificates of applications: what a connection or a trusted proxy's header
//! presents, checked against the trusted issuers, as the authorization server compares it
//! ([`PresentedCertificate`]).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use phr_auth::PresentedCertificate;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, UnixTime};
use sha2::{Digest, Sha256};
use x509_cert::der::asn1::ObjectIdentifier;
use x509_cert::der::{Decode, Tag, Tagged};

use super::{Peer, TlsError};
use crate::AppState;
use crate::config::TrustedProxies;

/// The Subject attribute carrying an application's OID: `serialNumber` (X.520).
const SERIAL_NUMBER: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.5");

/// The longest client certificate header accepted (a certificate chain in URL-encoded PEM).
const MAX_HEADER_BYTES: usize = 32 * 1024;

/// rustls' cryptography: ring (aws-lc-rs would need a C build). rustls marks ring's
/// provider deprecated for lacking post-quantum key exchange; the classical groups it offers
/// are the ones the clients of this service use.
#[allow(deprecated)]
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The trusted issuers of application certificates, and where a proxy passes one.
pub struct ClientCertificates {
    verifier: Arc<dyn ClientCertVerifier>,
    header: Option<HeaderName>,
    /// Certificate headers ignored because they came from a peer that is not a trusted proxy.
    ignored_headers: AtomicU64,
}

impl ClientCertificates {
    pub fn new(
        issuers: Vec<CertificateDer<'static>>,
        header: Option<&str>,
    ) -> Result<ClientCertificates, TlsError> {
        let mut roots = RootCertStore::empty();
        for issuer in issuers {
            roots
                .add(issuer)
                .map_err(|e| TlsError(format!("client_ca: an issuer is not usable: {e}")))?;
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
            .allow_unauthenticated()
            .build()
            .map_err(|e| TlsError(format!("client_ca: {e}")))?;
        let header = header
            .map(|name| {
                HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| TlsError(format!("{name:?} is not a header name")))
            })
            .transpose()?;
        Ok(ClientCertificates {
            verifier,
            header,
            ignored_headers: AtomicU64::new(0),
        })
    }

    /// The chain check against the trusted issuers (for the TLS layer's signature checks).
    pub fn verifier(&self) -> Arc<dyn ClientCertVerifier> {
        self.verifier.clone()
    }

    /// What a presented chain (the client's certificate first) amounts to; `None` for an
    /// empty chain.
    pub fn examine(&self, chain: &[CertificateDer<'_>]) -> Option<PresentedCertificate> {
        let (leaf, intermediates) = chain.split_first()?;
        let trust = self
            .verifier
            .verify_client_cert(leaf, intermediates, UnixTime::now())
            .map(|_| ())
            .map_err(|e| e.to_string());
        Some(PresentedCertificate {
            thumbprint: thumbprint(leaf),
            serial_number: subject_serial_number(leaf),
            trust,
        })
    }

    /// The certificate of a request: from the trusted proxy's header when the peer is one and
    /// sent it, else the connection's own. A header from anyone else is ignored (counted and
    /// logged, without its value).
    fn of_request(
        &self,
        peer: Option<IpAddr>,
        headers: &HeaderMap,
        connection: Option<Arc<PresentedCertificate>>,
        proxies: &TrustedProxies,
    ) -> Option<Arc<PresentedCertificate>> {
        let Some(value) = self.header.as_ref().and_then(|name| headers.get(name)) else {
            return connection;
        };
        if !peer.is_some_and(|peer| proxies.contains(peer)) {
            self.ignored_headers.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                peer = ?peer,
                "a client certificate header from a peer that is not a trusted proxy was ignored"
            );
            return connection;
        }
        Some(Arc::new(match parse_header(value.as_bytes()) {
            Ok(chain) => self.examine(&chain)?,
            Err(why) => PresentedCertificate {
                thumbprint: String::new(),
                serial_number: None,
                trust: Err(why),
            },
        }))
    }

    /// Writes the counter of ignored headers in Prometheus text format.
    pub fn render(&self, out: &mut String) {
        use std::fmt::Write;
        let _ = writeln!(
            out,
            "# HELP phr_client_certificate_headers_ignored_total Client certificate headers \
             ignored because they did not come from a trusted proxy.\n\
             # TYPE phr_client_certificate_headers_ignored_total counter\n\
             phr_client_certificate_headers_ignored_total {}",
            self.ignored_headers.load(Ordering::Relaxed)
        );
    }
}

/// RFC 8705 `x5t#S256`: base64url of the SHA-256 of the DER certificate.
pub fn thumbprint(certificate: &CertificateDer<'_>) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(certificate.as_ref()))
}

/// The Subject's `serialNumber` attribute, if the certificate has one (a printable, UTF-8 or
/// IA5 string).
pub fn subject_serial_number(certificate: &CertificateDer<'_>) -> Option<String> {
    let parsed = x509_cert::Certificate::from_der(certificate.as_ref()).ok()?;
    parsed
        .tbs_certificate
        .subject
        .0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .find(|attribute| attribute.oid == SERIAL_NUMBER)
        .filter(|attribute| {
            matches!(
                attribute.value.tag(),
                Tag::PrintableString | Tag::Utf8String | Tag::Ia5String
            )
        })
        .and_then(|attribute| std::str::from_utf8(attribute.value.value()).ok())
        .map(str::to_owned)
}

/// The certificate chain in a proxy's header: URL-encoded PEM (nginx
/// `$ssl_client_escaped_cert`), the client's certificate first.
pub fn parse_header(value: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    if value.len() > MAX_HEADER_BYTES {
        return Err("the client certificate header is too long".into());
    }
    let pem: Vec<u8> = percent_encoding::percent_decode(value).collect();
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| "the client certificate header is not URL-encoded PEM".to_string())?;
    if chain.is_empty() {
        return Err("the client certificate header holds no certificate".into());
    }
    Ok(chain)
}

/// The client certificate a request came with, for the token endpoint and the FHIR API.
#[derive(Debug, Clone, Default)]
pub struct RequestCertificate(pub Option<Arc<PresentedCertificate>>);

/// The outermost layer: names the peer of a TLS connection as a plain one is named
/// (`ConnectInfo<SocketAddr>`), and attaches the request's client certificate.
pub async fn layer(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let tls_peer = request
        .extensions()
        .get::<ConnectInfo<Peer>>()
        .map(|ConnectInfo(peer)| peer.clone());
    if let Some(peer) = &tls_peer {
        request
            .extensions_mut()
            .insert(ConnectInfo::<SocketAddr>(peer.address));
    }
    let certificate = state.client_certificates.as_ref().and_then(|clients| {
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(address)| address.ip());
        clients.of_request(
            peer,
            request.headers(),
            tls_peer.and_then(|p| p.certificate),
            &state.config.trusted_proxies,
        )
    });
    request
        .extensions_mut()
        .insert(RequestCertificate(certificate));
    next.run(request).await
}

/// Client certificates requested but optional, and not refused at the TLS level when their
/// chain does not check out (the request is, with a reason the client can read). The
/// handshake's signature is still checked: the client must hold the certificate's key.
#[derive(Debug)]
pub struct OptionalClientCertificate {
    inner: Arc<dyn ClientCertVerifier>,
}

impl OptionalClientCertificate {
    pub fn new(inner: Arc<dyn ClientCertVerifier>) -> Self {
        OptionalClientCertificate { inner }
    }
}

impl ClientCertVerifier for OptionalClientCertificate {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    };

    struct Ca {
        certificate: rcgen::Certificate,
        issuer: Issuer<'static, KeyPair>,
    }

    fn ca(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().unwrap();
        let certificate = params.self_signed(&key).unwrap();
        Ca {
            certificate,
            issuer: Issuer::new(params, key),
        }
    }

    fn application_certificate(ca: &Ca, serial_number: Option<&str>) -> CertificateDer<'static> {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, "Steps");
        if let Some(oid) = serial_number {
            params.distinguished_name.push(
                DnType::CustomDnType(vec![2, 5, 4, 5]),
                rcgen::DnValue::PrintableString(oid.try_into().unwrap()),
            );
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let key = KeyPair::generate().unwrap();
        params.signed_by(&key, &ca.issuer).unwrap().der().clone()
    }

    fn trusting(ca: &Ca) -> ClientCertificates {
        ClientCertificates::new(
            vec![ca.certificate.der().clone()],
            Some("x-ssl-client-cert"),
        )
        .unwrap()
    }

    #[test]
    fn the_subject_serial_number_is_read() {
        let ca = ca("Issuer");
        let with = application_certificate(&ca, Some("1.2.246.10.1"));
        assert_eq!(
            subject_serial_number(&with).as_deref(),
            Some("1.2.246.10.1")
        );
        assert_eq!(
            subject_serial_number(&application_certificate(&ca, None)),
            None
        );
        assert_eq!(
            subject_serial_number(&CertificateDer::from(vec![1, 2, 3])),
            None
        );
    }

    #[test]
    fn only_a_chain_to_a_trusted_issuer_is_trusted() {
        let (trusted, other) = (ca("Trusted"), ca("Other"));
        let clients = trusting(&trusted);
        let good = application_certificate(&trusted, Some("1.2.3"));
        let seen = clients.examine(std::slice::from_ref(&good)).unwrap();
        assert_eq!(seen.trust, Ok(()));
        assert_eq!(seen.serial_number.as_deref(), Some("1.2.3"));
        assert_eq!(seen.thumbprint, thumbprint(&good));
        assert_eq!(
            seen.thumbprint.len(),
            43,
            "32 bytes, base64url without padding"
        );
        let stranger = clients
            .examine(&[application_certificate(&other, Some("1.2.3"))])
            .unwrap();
        assert!(stranger.trust.is_err());
        assert!(clients.examine(&[]).is_none());
    }

    #[test]
    fn the_proxy_header_is_believed_only_from_trusted_proxies() {
        let ca = ca("Trusted");
        let clients = trusting(&ca);
        let certificate = application_certificate(&ca, Some("1.2.3"));
        let text = format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            base64::engine::general_purpose::STANDARD.encode(certificate.as_ref())
        );
        let escaped =
            percent_encoding::utf8_percent_encode(&text, percent_encoding::NON_ALPHANUMERIC)
                .to_string();
        let mut headers = HeaderMap::new();
        headers.insert("x-ssl-client-cert", escaped.parse().unwrap());
        let proxies = TrustedProxies::parse(&["10.0.0.0/8".into()]).unwrap();
        let from = |ip: &str, headers: &HeaderMap| {
            clients.of_request(Some(ip.parse().unwrap()), headers, None, &proxies)
        };
        let believed = from("10.1.2.3", &headers).unwrap();
        assert_eq!(believed.trust, Ok(()));
        assert_eq!(believed.thumbprint, thumbprint(&certificate));
        assert!(from("192.0.2.7", &headers).is_none());
        assert_eq!(clients.ignored_headers.load(Ordering::Relaxed), 1);
        headers.insert("x-ssl-client-cert", "garbage".parse().unwrap());
        assert!(from("10.1.2.3", &headers).unwrap().trust.is_err());
    }
}
