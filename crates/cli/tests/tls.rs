//! HTTPS and applications bound to their client certificate (RFC 8705), black-box: the
//! certificates are made here (a trusted issuer, an untrusted one, application certificates
//! with the right and a wrong OID in the Subject serialNumber), the server is the real
//! binary, and the HTTPS client is rustls over a plain socket, with or without a certificate.
//!
//! The citizen's login and consent run on a server that reads the client certificate from a
//! TLS-terminating proxy's header (the test plays the proxy), plain HTTP; the same data folder
//! is then served over HTTPS on the public URL the first server named, and the tokens issued
//! by the first are used over real TLS connections.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;

use base64::Engine;
use common::browser::{Browser, csrf_of};
use common::*;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, DnValue, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyPair,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::Value;

const OID: &str = "1.2.246.10.12345678.10.1";
const OTHER_OID: &str = "1.2.246.10.87654321.10.1";
const SCOPE: &str = "patient/Observation.rs patient/Patient.rs offline_access";
const REDIRECT: &str = "http://127.0.0.1:9/callback";
const HEADER: &str = "X-SSL-Client-Cert";

struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn ca(name: &str) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let key = KeyPair::generate().unwrap();
    let pem = params.self_signed(&key).unwrap().pem();
    Ca {
        pem,
        issuer: Issuer::new(params, key),
    }
}

/// A certificate and its key, as PEM.
#[derive(Clone)]
struct Identity {
    cert: String,
    key: String,
}

impl Identity {
    fn der(&self) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(self.cert.as_bytes()).unwrap()
    }

    /// RFC 8705 `x5t#S256`.
    fn thumbprint(&self) -> String {
        use sha2::Digest;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(self.der()))
    }

    /// The certificate as a TLS-terminating proxy passes it (nginx `$ssl_client_escaped_cert`).
    fn escaped(&self) -> String {
        percent_encoding::utf8_percent_encode(&self.cert, percent_encoding::NON_ALPHANUMERIC)
            .to_string()
    }
}

/// An application's certificate from `ca`, with `oid` as the Subject serialNumber.
fn application(ca: &Ca, oid: &str) -> Identity {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, "Steps");
    params.distinguished_name.push(
        DnType::CustomDnType(vec![2, 5, 4, 5]),
        DnValue::PrintableString(oid.try_into().unwrap()),
    );
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let key = KeyPair::generate().unwrap();
    Identity {
        cert: params.signed_by(&key, &ca.issuer).unwrap().pem(),
        key: key.serialize_pem(),
    }
}

fn server_identity(ca: &Ca) -> Identity {
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, "phr");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate().unwrap();
    Identity {
        cert: params.signed_by(&key, &ca.issuer).unwrap().pem(),
        key: key.serialize_pem(),
    }
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// Every certificate of the test.
struct Pki {
    /// Issuer of the server's certificate (the client trusts it).
    server_ca: Ca,
    server: Identity,
    /// The trusted issuer of application certificates.
    trusted: Ca,
    /// The application's certificate, and another with the same OID (another key).
    right: Identity,
    right_again: Identity,
    wrong_oid: Identity,
    untrusted: Identity,
}

fn pki() -> Pki {
    let server_ca = ca("Server issuer");
    let server = server_identity(&server_ca);
    let trusted = ca("Trusted application issuer");
    let stranger = ca("Untrusted issuer");
    Pki {
        right: application(&trusted, OID),
        right_again: application(&trusted, OID),
        wrong_oid: application(&trusted, OTHER_OID),
        untrusted: application(&stranger, OID),
        server,
        server_ca,
        trusted,
    }
}

/// An HTTP/1.0 exchange over TLS (the body then ends with the connection, never chunked):
/// (status, body).
#[allow(deprecated)] // rustls' ring provider: see the server's TLS module.
fn https(pki: &Pki, address: &str, client: Option<&Identity>, request: &str) -> (u16, String) {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(pki.server_ca.pem.as_bytes()).unwrap())
        .unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let config = match client {
        Some(identity) => builder
            .with_client_auth_cert(
                vec![identity.der()],
                PrivateKeyDer::from_pem_slice(identity.key.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let connection = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let socket = TcpStream::connect(address).unwrap();
    socket
        .set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    let mut stream = rustls::StreamOwned::new(connection, socket);
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    match stream.read_to_end(&mut raw) {
        Ok(_) => {}
        // A peer closing without close_notify: what arrived is the whole answer.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {}
        Err(e) => panic!("reading the answer: {e}"),
    }
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    (status, body.to_string())
}

fn get_request(path: &str, token: Option<&str>, extra: &str) -> String {
    let authorization = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    format!(
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nAccept: application/fhir+json\r\n{authorization}{extra}\r\n"
    )
}

fn post_form(path: &str, form: &[(&str, &str)], extra: &str) -> String {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    format!(
        "POST {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n{extra}\r\n{body}",
        body.len()
    )
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| panic!("not JSON: {text}"))
}

/// The claims of a JWT, unverified.
fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

fn register_bound_app(server: &Server, app_id: &str) {
    let out = server.admin(&[
        "app",
        "register",
        "--id",
        app_id,
        "--name",
        "Steps",
        "--scope",
        SCOPE,
        "--redirect-uri",
        REDIRECT,
        "--certificate-oid",
        OID,
    ]);
    assert!(out.contains(&format!("certificate_oid: {OID}")), "{out}");
}

/// authorize (no PKCE: the app proves itself with its certificate) → sandbox login → terms →
/// consent: the authorization code.
fn code(server: &Server, app_id: &str, public_base: &str, hetu: &str) -> String {
    let mut browser = Browser::new(server);
    let authorize = url::Url::parse_with_params(
        &format!("{}/oauth/authorize", server.root),
        &[
            ("response_type", "code"),
            ("client_id", app_id),
            ("redirect_uri", REDIRECT),
            ("scope", SCOPE),
            ("state", "s1"),
            ("aud", &format!("{public_base}/fhir/r4")),
        ],
    )
    .unwrap();
    let page = browser.get(authorize.as_str());
    assert_eq!(page.status, 303, "{}", page.body);
    let login = browser.get("/oauth/login");
    assert_eq!(login.status, 200, "{}", login.body);
    let mut after = browser.post(
        "/oauth/login",
        &[("csrf", &csrf_of(&login.body)), ("hetu", hetu)],
    );
    if after.location.as_deref() == Some("/oauth/terms") {
        let terms = browser.get("/oauth/terms");
        after = browser.post(
            "/oauth/terms",
            &[("csrf", &csrf_of(&terms.body)), ("decision", "accept")],
        );
    }
    assert_eq!(after.location.as_deref(), Some("/oauth/consent"));
    let consent = browser.get("/oauth/consent");
    assert_eq!(consent.status, 200, "{}", consent.body);
    let csrf = csrf_of(&consent.body);
    let items: Vec<String> = (0..consent.body.matches("name=\"item\"").count())
        .map(|i| i.to_string())
        .collect();
    let mut form = vec![("csrf", csrf.as_str()), ("decision", "allow")];
    form.extend(items.iter().map(|i| ("item", i.as_str())));
    let done = browser.post("/oauth/consent", &form);
    assert_eq!(done.status, 303, "{}", done.body);
    let location = done.location.unwrap();
    url::Url::parse(&location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no code in {location}"))
}

/// A token request through the proxy header (`certificate` as the proxy passes it, or none).
fn token_via_proxy(
    server: &Server,
    form: &[(&str, &str)],
    certificate: Option<&Identity>,
) -> (u16, Value) {
    let mut request = server.client.post(format!("{}/oauth/token", server.root));
    if let Some(identity) = certificate {
        request = request.header(HEADER, identity.escaped());
    }
    let response = request
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(form)
                .finish(),
        )
        .send()
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port()
}

fn ignored_headers(metrics: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("phr_client_certificate_headers_ignored_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no ignored-header counter in {metrics}"))
}

#[test]
fn a_certificate_bound_application_gets_and_uses_its_tokens_only_with_its_certificate() {
    let pki = pki();
    let files = tempfile::tempdir().unwrap();
    let client_ca = write(files.path(), "issuers.pem", &pki.trusted.pem);
    let server_cert = write(files.path(), "server.pem", &pki.server.cert);
    let server_key = write(files.path(), "server.key", &pki.server.key);
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let public = format!("https://127.0.0.1:{port}");

    // 1. Behind a TLS-terminating proxy (the test) on the public URL: sign in and consent.
    let proxied = Server::start_behind(
        data.path(),
        &public,
        &[
            "--client-ca",
            &client_ca,
            "--client-certificate-header",
            HEADER,
            "--trusted-proxy",
            "127.0.0.1",
        ],
    );
    register_bound_app(&proxied, "steps");
    let code = code(&proxied, "steps", &public, &test_hetu("150391", 932));
    // tls_client_auth: client_id only, no secret, no PKCE verifier.
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("client_id", "steps"),
    ];
    for (certificate, why) in [
        (None, "must present"),
        (Some(&pki.untrusted), "trusted issuer"),
        (Some(&pki.wrong_oid), "serialNumber"),
    ] {
        let (status, answer) = token_via_proxy(&proxied, &form, certificate);
        assert_eq!(status, 401, "{answer}");
        assert_eq!(answer["error"], "invalid_client", "{answer}");
        let description = answer["error_description"].as_str().unwrap();
        assert!(description.contains(why), "{why}: {description}");
    }
    let (status, answer) = token_via_proxy(&proxied, &form, Some(&pki.right));
    assert_eq!(status, 200, "{answer}");
    let token = answer["access_token"].as_str().unwrap().to_string();
    let patient = answer["patient"].as_str().unwrap().to_string();
    let refresh_token = answer["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(
        claims(&token)["cnf"]["x5t#S256"],
        pki.right.thumbprint(),
        "bound to the certificate (RFC 8705)"
    );
    // The bound token through the proxy: only with the same certificate.
    let read = |certificate: Option<&Identity>| {
        let mut request = proxied
            .client
            .get(format!(
                "{}/fhir/r4/Observation?patient={patient}",
                proxied.root
            ))
            .bearer_auth(&token);
        if let Some(identity) = certificate {
            request = request.header(HEADER, identity.escaped());
        }
        request.send().unwrap()
    };
    let allowed = read(Some(&pki.right));
    assert_eq!(allowed.status(), 200, "{}", allowed.text().unwrap());
    for (certificate, what) in [
        (None, "no certificate"),
        (Some(&pki.right_again), "another"),
    ] {
        let refused = read(certificate);
        assert_eq!(refused.status(), 401, "{what}");
        let outcome: Value = refused.json().unwrap();
        assert_eq!(outcome["resourceType"], "OperationOutcome", "{what}");
    }
    // `phr token` cannot mint an unbound token for it.
    let refused = proxied.admin_fails(&[
        "token",
        "--hetu",
        &test_hetu("150391", 932),
        "--app",
        "steps",
        "--scope",
        SCOPE,
    ]);
    assert!(refused.contains("certificate"), "{refused}");
    proxied.terminate();

    // 2. The same data served over HTTPS at the public URL; the header is believed from no
    // one here (the only trusted proxy is elsewhere).
    let tls = Server::start_listening(
        data.path(),
        &format!("127.0.0.1:{port}"),
        &[
            "--tls-cert",
            &server_cert,
            "--tls-key",
            &server_key,
            "--client-ca",
            &client_ca,
            "--client-certificate-header",
            HEADER,
            "--trusted-proxy",
            "10.0.0.1",
        ],
    );
    assert_eq!(tls.root, public, "serves HTTPS at the public URL");
    let address = format!("127.0.0.1:{port}");
    let observations = get_request(
        &format!("/fhir/r4/Observation?patient={patient}"),
        Some(&token),
        "",
    );
    let (status, body) = https(&pki, &address, Some(&pki.right), &observations);
    assert_eq!(status, 200, "{body}");
    assert_eq!(json(&body)["resourceType"], "Bundle");
    for (certificate, what) in [
        (None, "no certificate"),
        (
            Some(&pki.right_again),
            "another certificate with the same OID",
        ),
        (
            Some(&pki.untrusted),
            "a certificate from an untrusted issuer",
        ),
    ] {
        let (status, body) = https(&pki, &address, certificate, &observations);
        assert_eq!(status, 401, "{what}: {body}");
        assert_eq!(json(&body)["resourceType"], "OperationOutcome", "{what}");
    }
    // Citizens' browsers have no certificate: the handshake and unbound requests still work.
    let (status, body) = https(
        &pki,
        &address,
        None,
        &get_request("/fhir/r4/metadata", None, ""),
    );
    assert_eq!(status, 200, "{body}");

    // The token endpoint over TLS checks the certificate before anything else (the code is
    // made up: a client that passes the certificate check gets to the code check).
    let form = [
        ("grant_type", "authorization_code"),
        ("code", "made-up"),
        ("redirect_uri", REDIRECT),
        ("client_id", "steps"),
    ];
    let ask = |certificate: Option<&Identity>, extra: &str| {
        let (status, body) = https(
            &pki,
            &address,
            certificate,
            &post_form("/oauth/token", &form, extra),
        );
        (status, json(&body))
    };
    for (certificate, why) in [
        (None, "must present"),
        (Some(&pki.untrusted), "trusted issuer"),
        (Some(&pki.wrong_oid), "serialNumber"),
    ] {
        let (status, answer) = ask(certificate, "");
        assert_eq!(status, 401, "{answer}");
        assert_eq!(answer["error"], "invalid_client");
        assert!(
            answer["error_description"].as_str().unwrap().contains(why),
            "{why}: {answer}"
        );
    }
    let (status, answer) = ask(Some(&pki.right), "");
    assert_eq!(
        (status, answer["error"].as_str()),
        (400, Some("invalid_grant")),
        "{answer}"
    );
    // A certificate header from a peer that is not a trusted proxy is ignored, and counted.
    let (status, answer) = ask(None, &format!("{HEADER}: {}\r\n", pki.right.escaped()));
    assert_eq!(status, 401, "{answer}");
    let (_, metrics) = https(&pki, &address, None, &get_request("/metrics", None, ""));
    assert!(ignored_headers(&metrics) >= 1, "{metrics}");
    assert!(!metrics.contains(&pki.right.escaped()));

    // Discovery advertises RFC 8705.
    let (_, smart) = https(
        &pki,
        &address,
        None,
        &get_request("/.well-known/smart-configuration", None, ""),
    );
    let smart = json(&smart);
    assert!(
        smart["token_endpoint_auth_methods_supported"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m == "tls_client_auth"),
        "{smart}"
    );
    assert_eq!(smart["tls_client_certificate_bound_access_tokens"], true);
    // A refresh needs the certificate too, and the new token is bound to it.
    let refresh = |certificate: Option<&Identity>| {
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.as_str()),
            ("client_id", "steps"),
        ];
        let (status, body) = https(
            &pki,
            &address,
            certificate,
            &post_form("/oauth/token", &form, ""),
        );
        (status, json(&body))
    };
    let (status, answer) = refresh(None);
    assert_eq!(
        (status, answer["error"].as_str()),
        (401, Some("invalid_client")),
        "{answer}"
    );
    let (status, answer) = refresh(Some(&pki.right));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        claims(answer["access_token"].as_str().unwrap())["cnf"]["x5t#S256"],
        pki.right.thumbprint()
    );
    // SIGTERM drains and stops an HTTPS server as it does a plain one.
    assert!(tls.terminate().success());
}

#[test]
fn registration_checks_the_certificate_oid() {
    let server = Server::start(&[]);
    let refused = server.admin_fails(&[
        "app",
        "register",
        "--name",
        "Steps",
        "--scope",
        SCOPE,
        "--redirect-uri",
        REDIRECT,
        "--certificate-oid",
        "not-an-oid",
    ]);
    assert!(refused.contains("not an OID"), "{refused}");
    let listed = server.admin(&["app", "list", "--json"]);
    assert!(!listed.contains("Steps"), "nothing registered: {listed}");
}

#[test]
fn tls_settings_that_cannot_work_are_refused_at_start() {
    let files = tempfile::tempdir().unwrap();
    let pki = pki();
    let client_ca = write(files.path(), "issuers.pem", &pki.trusted.pem);
    let not_pem = write(files.path(), "garbage.pem", "not a certificate");
    let data = tempfile::tempdir().unwrap();
    let data = data.path().display().to_string();
    for (args, why) in [
        (vec!["--client-ca", client_ca.as_str()], "need TLS"),
        (vec!["--tls-cert", client_ca.as_str()], "give both"),
        (
            vec![
                "--tls-cert",
                not_pem.as_str(),
                "--tls-key",
                not_pem.as_str(),
            ],
            "no PEM certificate",
        ),
    ] {
        let mut all = vec!["serve", "--listen", "127.0.0.1:0", "--data", data.as_str()];
        all.extend(args);
        let error = phr_fails(&all);
        assert!(error.contains(why), "{why}: {error}");
    }
}

#[test]
fn in_production_a_wellbeing_application_is_registered_with_its_certificate_oid() {
    let dir = tempfile::tempdir().unwrap();
    // Production needs an upstream identity provider; nothing here talks to it.
    let config = write(
        dir.path(),
        "phr.toml",
        "public_url = \"https://phr.example.fi\"\n[auth]\nmode = \"production\"\n\
         [auth.oidc]\nissuer = \"http://127.0.0.1:9\"\nclient_id = \"phr\"\nclient_secret = \"s\"\n",
    );
    let data = dir.path().join("data").display().to_string();
    let register = |extra: &[&'static str]| {
        let mut args: Vec<&str> = vec![
            "app",
            "register",
            "--config",
            config.as_str(),
            "--data",
            data.as_str(),
            "--name",
            "Steps",
            "--scope",
            SCOPE,
            "--redirect-uri",
            "https://steps.example.fi/cb",
        ];
        args.extend(extra);
        args
    };
    let refused = phr_fails(&register(&[]));
    assert!(refused.contains("--certificate-oid"), "{refused}");
    let out = phr_ok(&register(&["--certificate-oid", OID]));
    assert!(out.contains(&format!("certificate_oid: {OID}")), "{out}");
    // A new registration in production is served on R4 only: STU3 is deprecated.
    assert!(out.contains("fhir_versions: r4\n"), "{out}");
}
