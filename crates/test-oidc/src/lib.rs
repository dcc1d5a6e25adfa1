//! A real OpenID Connect provider for tests (see the README): discovery, authorization code
//! with PKCE S256, an ES256-signed ID token, JWKS and userinfo, on a loopback port served by
//! a thread of its own. Who signs in is set by the test, not asked.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::EncodePrivateKey;
use serde_json::{Map, Value, json};
use sha2::Digest;

/// The `sub` of the ID token unless the test's claims name another.
pub const DEFAULT_SUBJECT: &str = "upstream-subject-1";
/// The access token the provider issues (for its userinfo endpoint only).
const ACCESS_TOKEN: &str = "upstream-access";
const KEY_ID: &str = "upstream-1";

/// What the test decides about the next sign-ins.
#[derive(Default)]
struct Choices {
    claims: Map<String, Value>,
    userinfo: Map<String, Value>,
    wrong_nonce: bool,
}

/// What an issued code stands for: the nonce and PKCE challenge asked with it and the ID
/// token's claims chosen when it was issued.
struct Issued {
    nonce: String,
    challenge: String,
    claims: Map<String, Value>,
}

struct Shared {
    issuer: String,
    client_id: String,
    client_secret: String,
    key: jsonwebtoken::EncodingKey,
    jwk: Value,
    choices: Mutex<Choices>,
    codes: Mutex<HashMap<String, Issued>>,
}

/// A running provider; it stops with the test process.
pub struct Provider {
    /// `http://127.0.0.1:PORT`, the issuer its ID tokens name.
    pub issuer: String,
    shared: Arc<Shared>,
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

impl Provider {
    /// Starts a provider for the client `client_id` with `client_secret`.
    pub fn start(client_id: &str, client_secret: &str) -> Provider {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        listener.set_nonblocking(true).expect("non-blocking");
        let issuer = format!("http://{}", listener.local_addr().expect("address"));
        let secret = p256::SecretKey::from_slice(&[42u8; 32]).expect("a P-256 key");
        let point = secret.public_key().to_encoded_point(false);
        let jwk = json!({
            "kty": "EC", "crv": "P-256", "kid": KEY_ID, "use": "sig", "alg": "ES256",
            "x": URL_SAFE_NO_PAD.encode(point.x().expect("x")),
            "y": URL_SAFE_NO_PAD.encode(point.y().expect("y")),
        });
        let der = secret.to_pkcs8_der().expect("PKCS#8");
        let shared = Arc::new(Shared {
            issuer: issuer.clone(),
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            key: jsonwebtoken::EncodingKey::from_ec_der(der.as_bytes()),
            jwk,
            choices: Mutex::new(Choices::default()),
            codes: Mutex::new(HashMap::new()),
        });
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .route("/jwks", get(jwks))
            .route("/userinfo", get(userinfo))
            .with_state(shared.clone());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                axum::serve(listener, app).await.expect("serve");
            });
        });
        Provider { issuer, shared }
    }

    /// The claims the ID tokens of the next sign-ins carry besides `iss`, `aud`, `iat`,
    /// `exp` and `nonce` (a `sub` here replaces [`DEFAULT_SUBJECT`]).
    pub fn sign_in_as(&self, claims: Value) {
        if let Ok(mut choices) = self.shared.choices.lock() {
            choices.claims = object(claims);
        }
    }

    /// The claims userinfo answers besides `sub`.
    pub fn userinfo(&self, claims: Value) {
        if let Ok(mut choices) = self.shared.choices.lock() {
            choices.userinfo = object(claims);
        }
    }

    /// Whether ID tokens carry a nonce other than the one asked for.
    pub fn wrong_nonce(&self, wrong: bool) {
        if let Ok(mut choices) = self.shared.choices.lock() {
            choices.wrong_nonce = wrong;
        }
    }
}

fn oauth_error(status: StatusCode, error: &str) -> Response {
    (status, Json(json!({ "error": error }))).into_response()
}

async fn discovery(State(p): State<Arc<Shared>>) -> Json<Value> {
    Json(json!({
        "issuer": p.issuer,
        "authorization_endpoint": format!("{}/authorize", p.issuer),
        "token_endpoint": format!("{}/token", p.issuer),
        "jwks_uri": format!("{}/jwks", p.issuer),
        "userinfo_endpoint": format!("{}/userinfo", p.issuer),
    }))
}

async fn jwks(State(p): State<Arc<Shared>>) -> Json<Value> {
    Json(json!({ "keys": [p.jwk] }))
}

async fn authorize(
    State(p): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let asked = |name: &str| q.get(name).map(String::as_str).unwrap_or("");
    let fits = asked("client_id") == p.client_id
        && asked("response_type") == "code"
        && asked("code_challenge_method") == "S256"
        && !asked("code_challenge").is_empty()
        && asked("scope").split(' ').any(|s| s == "openid");
    let Ok(mut target) = url::Url::parse(asked("redirect_uri")) else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request");
    };
    if !fits {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request");
    }
    let code = uuid::Uuid::new_v4().to_string();
    let claims = p
        .choices
        .lock()
        .map(|c| c.claims.clone())
        .unwrap_or_default();
    if let Ok(mut codes) = p.codes.lock() {
        codes.insert(
            code.clone(),
            Issued {
                nonce: asked("nonce").to_owned(),
                challenge: asked("code_challenge").to_owned(),
                claims,
            },
        );
    }
    target
        .query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", asked("state"));
    Redirect::to(target.as_str()).into_response()
}

fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()))
}

async fn token(
    State(p): State<Arc<Shared>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let basic = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let expected = format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", p.client_id, p.client_secret))
    );
    if basic != expected {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    let given = |name: &str| form.get(name).map(String::as_str).unwrap_or("");
    let found = p
        .codes
        .lock()
        .ok()
        .and_then(|mut c| c.remove(given("code")));
    let Some(Issued {
        nonce,
        challenge,
        claims: chosen,
    }) = found
    else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
    };
    if pkce_challenge(given("code_verifier")) != challenge {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
    }
    let wrong_nonce = p.choices.lock().map(|c| c.wrong_nonce).unwrap_or(false);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut claims = object(json!({
        "iss": p.issuer, "sub": DEFAULT_SUBJECT, "aud": p.client_id, "iat": now, "exp": now + 300,
        "nonce": if wrong_nonce { "not-the-nonce".to_owned() } else { nonce },
    }));
    claims.extend(chosen);
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some(KEY_ID.into());
    let Ok(id_token) = jsonwebtoken::encode(&header, &claims, &p.key) else {
        return oauth_error(StatusCode::INTERNAL_SERVER_ERROR, "server_error");
    };
    Json(json!({"access_token": ACCESS_TOKEN, "token_type": "Bearer", "id_token": id_token}))
        .into_response()
}

async fn userinfo(State(p): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let bearer = format!("Bearer {ACCESS_TOKEN}");
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(bearer.as_str()) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let (subject, mut info) = match p.choices.lock() {
        Ok(c) => (
            c.claims
                .get("sub")
                .cloned()
                .unwrap_or_else(|| json!(DEFAULT_SUBJECT)),
            c.userinfo.clone(),
        ),
        Err(_) => (json!(DEFAULT_SUBJECT), Map::new()),
    };
    info.insert("sub".into(), subject);
    Json(Value::Object(info)).into_response()
}
