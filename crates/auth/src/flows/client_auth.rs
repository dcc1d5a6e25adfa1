//! Who the calling client is, at the token, introspection and revocation endpoints:
//! `client_secret_basic`, `client_secret_post`, `private_key_jwt` (RFC 7523, as profiled by
//! SMART Backend Services), `tls_client_auth` (RFC 8705: a client registered with a
//! certificate OID names itself by `client_id` alone and presents that certificate) and
//! public clients identified by `client_id` alone.
//!
//! The method must match how the app was registered; a confidential client cannot fall back
//! to acting as a public one. A `private_key_jwt` client registered with a `jwks_uri` needs
//! its key set fetched over the network: [`key_set_to_fetch`] says which (touching only
//! storage) and [`fetch_key_set`] fetches it (touching only the network), before
//! [`authenticate`] runs.

use std::collections::HashMap;
use std::sync::RwLock;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;

use crate::apps::{App, ClientType, parse_jwks};
use crate::certificate::PresentedCertificate;
use crate::error::{AuthError, OAuthError};
use crate::params::Params;
use crate::service::AuthService;

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// SMART Backend Services: assertions expire at most five minutes ahead.
const MAX_ASSERTION_LIFETIME: i64 = 300;
/// Fetched client key sets are reused this long.
const JWKS_CACHE_SECONDS: i64 = 300;

/// Algorithms accepted for client assertions.
pub const ASSERTION_ALGORITHMS: [Algorithm; 4] = [
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::RS256,
    Algorithm::RS384,
];

/// How a client says who it is, as read from a request (nothing checked yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientCredentials {
    /// `client_secret_basic` or `client_secret_post`.
    Secret { client_id: String, secret: String },
    /// `private_key_jwt`: a signed assertion (the form's `client_id`, if sent, must match
    /// its issuer).
    Assertion {
        client_id: Option<String>,
        assertion: String,
    },
    /// A public client: `client_id` alone.
    Public { client_id: String },
}

/// Reads `client_id:client_secret` from an `Authorization: Basic` value (each part
/// form-urlencoded, RFC 6749 §2.3.1).
pub fn parse_basic(header: &str) -> Option<(String, String)> {
    let encoded = header
        .strip_prefix("Basic ")
        .or_else(|| header.strip_prefix("basic "))?;
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let unescape = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    Some((unescape(id)?, unescape(secret)?))
}

/// Whether an `Authorization` header value uses the Basic scheme.
pub fn is_basic(authorization: &str) -> bool {
    authorization.len() > 6
        && authorization
            .get(..6)
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("basic "))
}

impl ClientCredentials {
    /// Reads the credentials of a form request and its `Authorization` header value:
    /// exactly one method, and a `client_id` in the form must agree with it.
    pub fn from_form(params: &Params, authorization: Option<&str>) -> Result<Self, OAuthError> {
        let assertion_type = params.get("client_assertion_type")?;
        let assertion = params.get("client_assertion")?;
        let form_secret = params.get("client_secret")?;
        let form_id = params.get("client_id")?;
        if let Some(header) = authorization.filter(|h| is_basic(h)) {
            if form_secret.is_some() || assertion.is_some() {
                return Err(OAuthError::invalid_request(
                    "use exactly one client authentication method",
                ));
            }
            let (client_id, secret) = parse_basic(header)
                .ok_or_else(|| OAuthError::invalid_client("malformed Basic credentials"))?;
            if form_id.is_some_and(|f| f != client_id) {
                return Err(OAuthError::invalid_client(
                    "client_id does not match the credentials",
                ));
            }
            return Ok(ClientCredentials::Secret { client_id, secret });
        }
        if let Some(assertion) = assertion {
            if assertion_type != Some(ASSERTION_TYPE) {
                return Err(OAuthError::invalid_client(
                    "unsupported client_assertion_type",
                ));
            }
            if form_secret.is_some() {
                return Err(OAuthError::invalid_request(
                    "use exactly one client authentication method",
                ));
            }
            return Ok(ClientCredentials::Assertion {
                client_id: form_id.map(str::to_owned),
                assertion: assertion.to_owned(),
            });
        }
        let client_id = form_id
            .ok_or_else(|| OAuthError::invalid_client("client authentication is required"))?
            .to_owned();
        Ok(match form_secret {
            Some(secret) => ClientCredentials::Secret {
                client_id,
                secret: secret.to_owned(),
            },
            None => ClientCredentials::Public { client_id },
        })
    }

    /// The client id the request names (an assertion's only after it is checked).
    pub fn client_id(&self) -> Option<&str> {
        match self {
            ClientCredentials::Secret { client_id, .. }
            | ClientCredentials::Public { client_id } => Some(client_id),
            ClientCredentials::Assertion { client_id, .. } => client_id.as_deref(),
        }
    }
}

#[derive(Deserialize)]
struct AssertionClaims {
    iss: String,
    sub: String,
    exp: i64,
    jti: String,
}

/// Authenticates the calling client.
pub fn authenticate(
    auth: &AuthService,
    credentials: &ClientCredentials,
) -> Result<App, OAuthError> {
    authenticate_with_certificate(auth, credentials, None)
}

/// Authenticates the calling client, which may present a client certificate: a client
/// registered with a certificate OID authenticates by that certificate alone
/// (`tls_client_auth`) when it sends no other credentials.
pub fn authenticate_with_certificate(
    auth: &AuthService,
    credentials: &ClientCredentials,
    certificate: Option<&PresentedCertificate>,
) -> Result<App, OAuthError> {
    match credentials {
        ClientCredentials::Secret { client_id, secret } => secret_client(auth, client_id, secret),
        ClientCredentials::Assertion {
            client_id,
            assertion,
        } => assertion_client(auth, assertion, client_id.as_deref()),
        ClientCredentials::Public { client_id } => {
            let app = usable_app(auth, client_id)?;
            let by_certificate = app
                .certificate_oid
                .as_deref()
                .is_some_and(|oid| crate::certificate::mismatch(oid, certificate).is_none());
            if app.client_type != ClientType::Public && !by_certificate {
                return Err(OAuthError::invalid_client("this client must authenticate"));
            }
            Ok(app)
        }
    }
}

/// The app, if it exists and may act in the current mode.
fn usable_app(auth: &AuthService, id: &str) -> Result<App, OAuthError> {
    let app = auth
        .app(id)?
        .ok_or_else(|| OAuthError::invalid_client("unknown client"))?;
    if !app.status.is_usable(auth.config().mode) {
        return Err(OAuthError::invalid_client(format!(
            "the application is {}",
            app.status.code()
        )));
    }
    Ok(app)
}

fn secret_client(auth: &AuthService, id: &str, secret: &str) -> Result<App, OAuthError> {
    let app = auth
        .app(id)?
        .ok_or_else(|| OAuthError::invalid_client("unknown client"))?;
    if app.client_type != ClientType::Confidential || !auth.0.apps.check_secret(id, secret)? {
        return Err(OAuthError::invalid_client("client authentication failed"));
    }
    if !app.status.is_usable(auth.config().mode) {
        return Err(OAuthError::invalid_client(format!(
            "the application is {}",
            app.status.code()
        )));
    }
    Ok(app)
}

fn rejected(why: &str) -> OAuthError {
    OAuthError::invalid_client(format!("client assertion rejected: {why}"))
}

/// The client an assertion names, before its signature is checked.
fn assertion_issuer(assertion: &str) -> Result<String, OAuthError> {
    Ok(
        jsonwebtoken::dangerous::insecure_decode::<AssertionClaims>(assertion)
            .map_err(|_| rejected("malformed claims"))?
            .claims
            .iss,
    )
}

fn assertion_client(
    auth: &AuthService,
    assertion: &str,
    form_id: Option<&str>,
) -> Result<App, OAuthError> {
    let header = jsonwebtoken::decode_header(assertion).map_err(|_| rejected("malformed"))?;
    if !ASSERTION_ALGORITHMS.contains(&header.alg) {
        return Err(rejected("algorithm not accepted"));
    }
    // The issuer names the client; it is trusted only after the signature checks out.
    let client_id = assertion_issuer(assertion)?;
    if form_id.is_some_and(|f| f != client_id) {
        return Err(rejected("client_id does not match the assertion issuer"));
    }
    let app = usable_app(auth, &client_id)?;
    if app.client_type != ClientType::PrivateKeyJwt {
        return Err(rejected(
            "this client is not registered for private_key_jwt",
        ));
    }
    let jwks = client_jwks(auth, &app).map_err(|e| rejected(&e))?;
    let jwk = match &header.kid {
        Some(kid) => jwks.find(kid),
        None => match jwks.keys.as_slice() {
            [only] => Some(only),
            _ => None,
        },
    }
    .ok_or_else(|| rejected("no registered key matches the kid"))?;
    let key = DecodingKey::from_jwk(jwk).map_err(|_| rejected("registered key unusable"))?;
    let mut validation = Validation::new(header.alg);
    validation.validate_exp = false;
    validation.set_issuer(&[&client_id]);
    let token_endpoint = auth.config().endpoints.token.as_str();
    validation.set_audience(&[token_endpoint]);
    validation.set_required_spec_claims(&["iss", "sub", "aud", "exp", "jti"]);
    let claims = jsonwebtoken::decode::<AssertionClaims>(assertion, &key, &validation)
        .map_err(|e| rejected(&format!("{:?}", e.kind())))?
        .claims;
    if claims.sub != client_id {
        return Err(rejected("sub must equal iss"));
    }
    let now = auth.now();
    if claims.exp < now {
        return Err(rejected("expired"));
    }
    if claims.exp > now + MAX_ASSERTION_LIFETIME + 60 {
        return Err(rejected("expires too far in the future"));
    }
    if !auth
        .0
        .tokens
        .use_client_assertion(&client_id, &claims.jti, claims.exp)?
    {
        return Err(rejected("jti already used"));
    }
    Ok(app)
}

/// A key set fetched from a `jwks_uri` (or why fetching failed), and when.
type Fetched = (Result<Value, String>, i64);

/// Key sets fetched from clients' `jwks_uri`, by URI, and the HTTP client that fetches them.
pub(crate) struct ClientKeys {
    http: reqwest::Client,
    fetched: RwLock<HashMap<String, Fetched>>,
}

impl ClientKeys {
    pub fn new() -> Result<ClientKeys, AuthError> {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| AuthError::Config(format!("HTTP client: {e}")))?;
        Ok(ClientKeys {
            http,
            fetched: RwLock::new(HashMap::new()),
        })
    }

    fn get(&self, uri: &str) -> Option<Fetched> {
        self.fetched.read().ok()?.get(uri).cloned()
    }
}

fn client_jwks(auth: &AuthService, app: &App) -> Result<JwkSet, String> {
    if let Some(inline) = &app.jwks {
        return parse_jwks(inline);
    }
    let uri = app.jwks_uri.as_deref().ok_or("no JWKS registered")?;
    match auth.0.client_keys.get(uri) {
        Some((Ok(value), _)) => parse_jwks(&value),
        Some((Err(why), _)) => Err(why),
        None => Err("the key set at jwks_uri has not been fetched".into()),
    }
}

/// The `jwks_uri` whose key set must be fetched before `credentials` can be checked: a
/// `private_key_jwt` client's, when not fetched in the last five minutes.
pub fn key_set_to_fetch(auth: &AuthService, credentials: &ClientCredentials) -> Option<String> {
    let ClientCredentials::Assertion { assertion, .. } = credentials else {
        return None;
    };
    let app = auth.app(&assertion_issuer(assertion).ok()?).ok()??;
    if app.client_type != ClientType::PrivateKeyJwt || app.jwks.is_some() {
        return None;
    }
    let uri = app.jwks_uri?;
    match auth.0.client_keys.get(&uri) {
        Some((Ok(_), fetched)) if auth.now() - fetched < JWKS_CACHE_SECONDS => None,
        _ => Some(uri),
    }
}

/// Fetches a client's key set from its `jwks_uri` (network only), for [`authenticate`].
pub async fn fetch_key_set(auth: &AuthService, uri: &str) {
    let keys = &auth.0.client_keys;
    let fetched: Result<Value, String> = async {
        keys.http
            .get(uri)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| format!("fetching jwks_uri failed: {e}"))?
            .json::<Value>()
            .await
            .map_err(|e| format!("jwks_uri did not return JSON: {e}"))
    }
    .await;
    let fetched = fetched.and_then(|value| parse_jwks(&value).map(|_| value));
    if let Ok(mut cache) = keys.fetched.write() {
        cache.insert(uri.to_owned(), (fetched, auth.now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_decoded() {
        let header = format!("Basic {}", STANDARD.encode("my%20app:s%3Acret"));
        assert_eq!(
            parse_basic(&header),
            Some(("my app".into(), "s:cret".into()))
        );
        assert_eq!(parse_basic("Bearer x"), None);
        assert_eq!(parse_basic("Basic !!!"), None);
        assert!(is_basic("BASIC abc") && !is_basic("Basic") && !is_basic("Bearer abc"));
    }

    #[test]
    fn exactly_one_client_authentication_method() {
        let basic = format!("Basic {}", STANDARD.encode("a:s"));
        let form = |text: &str| Params::parse(text);
        assert_eq!(
            ClientCredentials::from_form(&form(""), Some(&basic)),
            Ok(ClientCredentials::Secret {
                client_id: "a".into(),
                secret: "s".into()
            })
        );
        assert_eq!(
            ClientCredentials::from_form(&form("client_secret=x"), Some(&basic))
                .unwrap_err()
                .code,
            "invalid_request"
        );
        assert_eq!(
            ClientCredentials::from_form(&form("client_id=b"), Some(&basic))
                .unwrap_err()
                .code,
            "invalid_client"
        );
        assert_eq!(
            ClientCredentials::from_form(&form("client_id=a"), None),
            Ok(ClientCredentials::Public {
                client_id: "a".into()
            })
        );
        assert_eq!(
            ClientCredentials::from_form(&form("client_assertion=x&client_assertion_type=y"), None)
                .unwrap_err()
                .description,
            "unsupported client_assertion_type"
        );
        assert_eq!(
            ClientCredentials::from_form(&form(""), None)
                .unwrap_err()
                .status,
            401
        );
    }
}
