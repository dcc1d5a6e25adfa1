//! The authorization server's inputs, through its domain API on a real (temporary) database:
//! token-request forms with any `Authorization` header; client assertions (JWTs whose header
//! and claims are valid ones mutated, signed with the registered key, a wrong key or not at
//! all); authorization requests (redirect URI and PKCE checks); bearer tokens (garbage, forged
//! JWTs, real tokens with flipped bytes); introspection and revocation forms; RFC 7591
//! registration bodies; and the code exchange with a fuzzed PKCE verifier and redirect URI.
//! A refusal must be an OAuth error of the client's making, never `server_error`.

#![no_main]

use std::sync::{Arc, OnceLock};

use arbitrary::Unstructured;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use libfuzzer_sys::fuzz_target;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::EncodePrivateKey;
use phr_auth::flows::authorize;
use phr_auth::flows::introspection::{self, TokenQuestion};
use phr_auth::flows::{registration, token};
use phr_auth::params::Params;
use phr_auth::secrets::pkce_s256_challenge;
use phr_auth::{
    AppKind, AppStatus, AuthConfig, AuthService, ClientType, ManualClock, NewApp, OAuthError,
};
use phr_fuzz::{mutate, string};
use serde_json::{Value, json};

const BASE: &str = "https://phr.example.fi";
const TOKEN_URL: &str = "https://phr.example.fi/oauth/token";
const REDIRECT: &str = "https://app.example.fi/cb";
const VERIFIER: &str = "a-long-enough-pkce-code-verifier-0123456789abcdefghij";
/// A sandbox test identity (individual number 900–999).
const HETU: &str = "010180-9015";
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

struct Fixture {
    auth: AuthService,
    public: String,
    confidential: (String, String),
    backend: String,
    key: jsonwebtoken::EncodingKey,
    token: String,
    _dir: tempfile::TempDir,
}

fn app(name: &str, client_type: ClientType, jwks: Option<Value>) -> NewApp {
    NewApp {
        app_id: None,
        name: name.into(),
        // A backend service of a wellbeing application (a professional application would
        // need a registered organisation).
        kind: AppKind::Wellbeing,
        client_type,
        redirect_uris: if jwks.is_some() {
            vec![]
        } else {
            vec![REDIRECT.into()]
        },
        scope: if jwks.is_some() {
            "system/Observation.rs".into()
        } else {
            "patient/Observation.read patient/Observation.write offline_access".into()
        },
        contact: None,
        jwks,
        jwks_uri: None,
        org: None,
        certificate_oid: None,
        supplier: None,
        platform: None,
        fhir_versions: None,
    }
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = match std::path::Path::new("/dev/shm").is_dir() {
            true => tempfile::Builder::new()
                .prefix("phr-fuzz")
                .tempdir_in("/dev/shm"),
            false => tempfile::tempdir(),
        }
        .expect("a temporary folder");
        let mut config = AuthConfig::sandbox(dir.path(), BASE);
        config.endpoints.token = TOKEN_URL.into();
        let clock = Arc::new(ManualClock::starting_now());
        let auth = AuthService::open_with_clock(config, clock).expect("the auth service opens");
        let register = |new| {
            auth.register_app(new, AppStatus::Sandbox)
                .expect("an app registers")
        };
        let public = register(app("Public", ClientType::Public, None)).app.app_id;
        let confidential = register(app("Secret", ClientType::Confidential, None));
        let secret = p256::SecretKey::from_slice(&[7u8; 32]).expect("a P-256 key");
        let point = secret.public_key().to_encoded_point(false);
        let jwk = json!({
            "kty": "EC", "crv": "P-256", "kid": "backend-1", "alg": "ES256",
            "x": URL_SAFE_NO_PAD.encode(point.x().map(|x| x.to_vec()).unwrap_or_default()),
            "y": URL_SAFE_NO_PAD.encode(point.y().map(|y| y.to_vec()).unwrap_or_default()),
        });
        let backend = register(app(
            "Backend",
            ClientType::PrivateKeyJwt,
            Some(json!({"keys": [jwk]})),
        ))
        .app
        .app_id;
        let der = secret.to_pkcs8_der().expect("a DER key");
        let key = jsonwebtoken::EncodingKey::from_ec_der(der.as_bytes());
        let token = auth
            .issue_token_for_cli(HETU, &public, "patient/Observation.read")
            .expect("a token for the sandbox citizen")
            .token
            .access_token;
        Fixture {
            auth,
            public,
            confidential: (
                confidential.app.app_id,
                confidential.client_secret.unwrap_or_default(),
            ),
            backend,
            key,
            token,
            _dir: dir,
        }
    })
}

fn check(answer: &Result<impl Sized, OAuthError>) {
    if let Err(e) = answer {
        assert_ne!(
            e.code, "server_error",
            "client input gave a server error: {}",
            e.description
        );
    }
}

fn text(u: &mut Unstructured) -> String {
    match u.int_in_range(0..=2).unwrap_or(0) {
        0 => string(u).unwrap_or_default(),
        _ => u.arbitrary().unwrap_or_default(),
    }
}

fn pick<'a>(u: &mut Unstructured, valid: &'a str, other: &'a mut String) -> Option<&'a str> {
    match u.int_in_range(0..=5).unwrap_or(0) {
        0 => None,
        1 | 2 => {
            *other = text(u);
            Some(other.as_str())
        }
        _ => Some(valid),
    }
}

/// A JWT from a (mutated) header and claims: signed by the registered key, by another key,
/// or carrying fuzzed signature bytes.
fn jwt(u: &mut Unstructured, f: &Fixture, mut header: Value, mut claims: Value) -> String {
    let _ = mutate(u, &mut header, 2);
    let _ = mutate(u, &mut claims, 4);
    let signing = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap_or_default()),
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap_or_default())
    );
    match u.int_in_range(0..=2).unwrap_or(0) {
        0 => {
            let sig: Vec<u8> = u.arbitrary().unwrap_or_default();
            format!("{signing}.{}", URL_SAFE_NO_PAD.encode(sig))
        }
        _ => {
            // Signed for real by the backend key (jsonwebtoken writes its own header; keep
            // ours by signing the exact text).
            let signed = jsonwebtoken::crypto::sign(
                signing.as_bytes(),
                &f.key,
                jsonwebtoken::Algorithm::ES256,
            )
            .unwrap_or_default();
            format!("{signing}.{signed}")
        }
    }
}

// Shared state is built before the first input, outside the per-input timeout.
fuzz_target!(init: {
    fixture();
}, |data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let f = fixture();
    let auth = &f.auth;
    let mut u = Unstructured::new(rest);
    let now = auth.clock().now();
    match mode % 8 {
        0 => {
            // A token request as the form arrives, with any Authorization header.
            let (header, form) = match mode & 0x40 {
                0 => (None, String::from_utf8_lossy(rest).into_owned()),
                _ => {
                    let basic: String = u.arbitrary().unwrap_or_default();
                    let form: String = u.arbitrary().unwrap_or_default();
                    (Some(format!("Basic {}", STANDARD.encode(basic))), form)
                }
            };
            check(&token::form_request(auth, &Params::parse(&form), header.as_deref(), None));
        }
        1 => {
            // private_key_jwt: a client assertion built from a valid one.
            let header = json!({"alg": "ES256", "typ": "JWT", "kid": "backend-1"});
            let claims = json!({"iss": f.backend, "sub": f.backend, "aud": TOKEN_URL,
                "exp": now + 240, "iat": now, "jti": format!("jti-{}", u.arbitrary::<u64>().unwrap_or(0))});
            let assertion = jwt(&mut u, f, header, claims);
            let (mut a, mut b) = (String::new(), String::new());
            let mut pairs = vec![
                ("grant_type".to_owned(), "client_credentials".to_owned()),
                ("client_assertion".to_owned(), assertion),
            ];
            if let Some(t) = pick(&mut u, ASSERTION_TYPE, &mut a) {
                pairs.push(("client_assertion_type".into(), t.into()));
            }
            if let Some(s) = pick(&mut u, "system/Observation.rs", &mut b) {
                pairs.push(("scope".into(), s.into()));
            }
            if u.ratio(1, 4).unwrap_or(false) {
                pairs.push(("client_id".into(), f.backend.clone()));
            }
            check(&token::form_request(auth, &Params::new(pairs), None, None));
        }
        2 => {
            // An authorization request: client, redirect URI, PKCE, scope, aud.
            let challenge = pkce_s256_challenge(VERIFIER);
            let mut owned: Vec<String> = (0..7).map(|_| String::new()).collect();
            let [a, b, c, d, e, g, h] = &mut owned[..] else { return };
            let fields = [
                ("client_id", pick(&mut u, &f.public, a)),
                ("redirect_uri", pick(&mut u, REDIRECT, b)),
                ("response_type", pick(&mut u, "code", c)),
                ("scope", pick(&mut u, "openid fhirUser patient/Observation.read", d)),
                ("aud", pick(&mut u, "https://phr.example.fi/fhir/r4", e)),
                ("code_challenge", pick(&mut u, &challenge, g)),
                ("code_challenge_method", pick(&mut u, "S256", h)),
            ];
            let mut pairs: Vec<(String, String)> = fields
                .iter()
                .filter_map(|(k, v)| v.map(|v| ((*k).to_owned(), v.to_owned())))
                .collect();
            pairs.push(("state".into(), text(&mut u)));
            let _ = authorize::validate(auth, &Params::new(pairs));
        }
        3 => {
            // A bearer token: garbage, a forged JWT, or a real one with flipped bytes.
            let header = match u.int_in_range(0..=2).unwrap_or(0) {
                0 => text(&mut u),
                1 => {
                    let claims = json!({"iss": BASE, "sub": "p", "aud": format!("{BASE}/fhir/r4"),
                        "exp": now + 600, "iat": now, "jti": "j", "client_id": f.public,
                        "scope": "patient/*.read", "patient": "p"});
                    jwt(&mut u, f, json!({"alg": "ES256", "typ": "JWT", "kid": "k"}), claims)
                }
                _ => {
                    let mut bytes = f.token.clone().into_bytes();
                    for _ in 0..u.int_in_range(1..=4).unwrap_or(1) {
                        let at = u.choose_index(bytes.len()).unwrap_or(0);
                        if let Some(b) = bytes.get_mut(at) {
                            *b = u.arbitrary().unwrap_or(b'A');
                        }
                    }
                    String::from_utf8_lossy(&bytes).into_owned()
                }
            };
            let scheme = if u.ratio(1, 8).unwrap_or(false) { "bearer  " } else { "Bearer " };
            if let Err(e) = auth.authenticate(Some(&format!("{scheme}{header}"))) {
                assert_ne!(e.status(), 500, "a bearer token gave a server error: {e}");
            }
        }
        4 => {
            // Introspection and revocation by the confidential client.
            let form: String = u.arbitrary().unwrap_or_default();
            let mut params = Params::parse(&form).pairs().to_vec();
            if u.ratio(1, 2).unwrap_or(false) {
                params.push(("client_id".into(), f.confidential.0.clone()));
                params.push(("client_secret".into(), f.confidential.1.clone()));
            }
            let params = Params::new(params);
            if let Ok(question) = TokenQuestion::from_form(&params, None) {
                if mode & 0x40 == 0 {
                    check(&introspection::introspect(auth, &question));
                } else {
                    check(&introspection::revoke(auth, &question));
                }
            }
        }
        5 => {
            // RFC 7591 registration: any body, or valid metadata mutated.
            let body = match mode & 0x40 {
                0 => rest.to_vec(),
                _ => {
                    let mut metadata = json!({"client_name": "Fuzz", "redirect_uris": [REDIRECT],
                        "token_endpoint_auth_method": "none", "grant_types": ["authorization_code"],
                        "scope": "patient/Observation.read"});
                    let _ = mutate(&mut u, &mut metadata, 4);
                    serde_json::to_vec(&metadata).unwrap_or_default()
                }
            };
            let _ = registration::register_client(auth, &body);
        }
        _ => {
            // The code exchange: a real code, then a fuzzed verifier and redirect URI.
            let request = authorize::validate(
                auth,
                &Params::new(
                    [
                        ("response_type", "code"),
                        ("client_id", f.public.as_str()),
                        ("redirect_uri", REDIRECT),
                        ("scope", "patient/Observation.read"),
                        ("code_challenge", pkce_s256_challenge(VERIFIER).as_str()),
                        ("code_challenge_method", "S256"),
                    ]
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
                ),
            );
            let Ok(request) = request else { return };
            let Ok(mut login) = authorize::start(auth, None, request) else { return };
            let Ok(authorize::Next::Consent) =
                authorize::identify_sandbox(auth, &mut login, Some(HETU))
            else {
                return;
            };
            let Ok(Some(login)) = authorize::resume(auth, &login.session) else { return };
            let Ok(redirect) = authorize::consent(auth, &login, true, &[0]) else { return };
            let Some(code) = redirect
                .split(['?', '&'])
                .find_map(|p| p.strip_prefix("code="))
                .map(str::to_owned)
            else {
                return;
            };
            let (mut a, mut b) = (String::new(), String::new());
            let mut pairs = vec![
                ("grant_type".to_owned(), "authorization_code".to_owned()),
                ("client_id".to_owned(), f.public.clone()),
                ("code".to_owned(), code),
            ];
            if let Some(v) = pick(&mut u, VERIFIER, &mut a) {
                pairs.push(("code_verifier".into(), v.into()));
            }
            if let Some(r) = pick(&mut u, REDIRECT, &mut b) {
                pairs.push(("redirect_uri".into(), r.into()));
            }
            check(&token::form_request(auth, &Params::new(pairs), None, None));
        }
    }
});
