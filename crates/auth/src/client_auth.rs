//! Client authentication at the token, introspection and revocation endpoints:
//! `client_secret_basic`, `client_secret_post`, `private_key_jwt` (RFC 7523, as profiled by
//! SMART Backend Services) and public clients identified by `client_id` alone.
//!
//! The method must match how the app was registered; a confidential client cannot fall back
//! to acting as a public one.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rusqlite::params;
use serde::Deserialize;
use serde_json::Value;

use crate::apps::{App, ClientType};
use crate::error::OAuthError;
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

pub(crate) fn parse_jwks(value: &Value) -> Result<JwkSet, String> {
    let set: JwkSet =
        serde_json::from_value(value.clone()).map_err(|e| format!("JWKS is not valid: {e}"))?;
    if set.keys.is_empty() {
        return Err("JWKS has no keys".into());
    }
    Ok(set)
}

#[derive(Deserialize)]
struct AssertionClaims {
    iss: String,
    sub: String,
    exp: i64,
    jti: String,
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

impl AuthService {
    /// Authenticates the calling client. `basic` is the `Authorization` header, if any.
    pub(crate) async fn authenticate_client(
        &self,
        params: &Params,
        basic: Option<&str>,
    ) -> Result<App, OAuthError> {
        let assertion_type = params.get("client_assertion_type")?;
        let assertion = params.get("client_assertion")?;
        let form_secret = params.get("client_secret")?;
        let form_id = params.get("client_id")?;
        let basic = basic.filter(|h| h.len() > 6 && h[..6].eq_ignore_ascii_case("basic "));

        if let Some(header) = basic {
            if form_secret.is_some() || assertion.is_some() {
                return Err(OAuthError::invalid_request(
                    "use exactly one client authentication method",
                ));
            }
            let (id, secret) = parse_basic(header)
                .ok_or_else(|| OAuthError::invalid_client("malformed Basic credentials"))?;
            if form_id.is_some_and(|f| f != id) {
                return Err(OAuthError::invalid_client(
                    "client_id does not match the credentials",
                ));
            }
            return self.secret_client(&id, &secret);
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
            return self.assertion_client(assertion, form_id).await;
        }
        let id = form_id
            .ok_or_else(|| OAuthError::invalid_client("client authentication is required"))?;
        if let Some(secret) = form_secret {
            return self.secret_client(id, secret);
        }
        let app = self.usable_app(id)?;
        if app.client_type != ClientType::Public {
            return Err(OAuthError::invalid_client("this client must authenticate"));
        }
        Ok(app)
    }

    /// The app, if it exists and may act in the current mode.
    pub(crate) fn usable_app(&self, id: &str) -> Result<App, OAuthError> {
        let app = self
            .app(id)?
            .ok_or_else(|| OAuthError::invalid_client("unknown client"))?;
        if !app.status.is_usable(self.config().mode) {
            return Err(OAuthError::invalid_client(format!(
                "the application is {}",
                app.status.code()
            )));
        }
        Ok(app)
    }

    fn secret_client(&self, id: &str, secret: &str) -> Result<App, OAuthError> {
        let app = self
            .app(id)?
            .ok_or_else(|| OAuthError::invalid_client("unknown client"))?;
        if app.client_type != ClientType::Confidential || !self.check_client_secret(id, secret)? {
            return Err(OAuthError::invalid_client("client authentication failed"));
        }
        if !app.status.is_usable(self.config().mode) {
            return Err(OAuthError::invalid_client(format!(
                "the application is {}",
                app.status.code()
            )));
        }
        Ok(app)
    }

    async fn assertion_client(
        &self,
        assertion: &str,
        form_id: Option<&str>,
    ) -> Result<App, OAuthError> {
        let failed =
            |why: &str| OAuthError::invalid_client(format!("client assertion rejected: {why}"));
        let header = jsonwebtoken::decode_header(assertion).map_err(|_| failed("malformed"))?;
        if !ASSERTION_ALGORITHMS.contains(&header.alg) {
            return Err(failed("algorithm not accepted"));
        }
        // The issuer names the client; it is trusted only after the signature checks out.
        let unverified = jsonwebtoken::dangerous::insecure_decode::<AssertionClaims>(assertion)
            .map_err(|_| failed("malformed claims"))?
            .claims;
        let client_id = unverified.iss.clone();
        if form_id.is_some_and(|f| f != client_id) {
            return Err(failed("client_id does not match the assertion issuer"));
        }
        let app = self.usable_app(&client_id)?;
        if app.client_type != ClientType::PrivateKeyJwt {
            return Err(failed("this client is not registered for private_key_jwt"));
        }
        let jwks = self.client_jwks(&app).await.map_err(|e| failed(&e))?;
        let jwk = match &header.kid {
            Some(kid) => jwks.find(kid),
            None if jwks.keys.len() == 1 => jwks.keys.first(),
            None => None,
        }
        .ok_or_else(|| failed("no registered key matches the kid"))?;
        let key = DecodingKey::from_jwk(jwk).map_err(|_| failed("registered key unusable"))?;
        let mut validation = Validation::new(header.alg);
        validation.validate_exp = false;
        validation.set_issuer(&[&client_id]);
        let token_endpoint = self.config().endpoint(crate::http::TOKEN_PATH);
        validation.set_audience(&[token_endpoint.as_str()]);
        validation.set_required_spec_claims(&["iss", "sub", "aud", "exp", "jti"]);
        let claims = jsonwebtoken::decode::<AssertionClaims>(assertion, &key, &validation)
            .map_err(|e| failed(&format!("{:?}", e.kind())))?
            .claims;
        if claims.sub != client_id {
            return Err(failed("sub must equal iss"));
        }
        let now = self.now();
        if claims.exp < now {
            return Err(failed("expired"));
        }
        if claims.exp > now + MAX_ASSERTION_LIFETIME + 60 {
            return Err(failed("expires too far in the future"));
        }
        let fresh = self.db().execute(
            "INSERT INTO client_assertions (app_id, jti, expires_at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
            params![client_id, claims.jti, claims.exp],
        ).map_err(crate::error::AuthError::from)?;
        if fresh == 0 {
            return Err(failed("jti already used"));
        }
        Ok(app)
    }

    async fn client_jwks(&self, app: &App) -> Result<JwkSet, String> {
        if let Some(inline) = &app.jwks {
            return parse_jwks(inline);
        }
        let uri = app.jwks_uri.as_deref().ok_or("no JWKS registered")?;
        let now = self.now();
        let cached = self
            .0
            .jwks_cache
            .read()
            .ok()
            .and_then(|c| c.get(uri).cloned());
        if let Some((value, fetched)) = cached
            && now - fetched < JWKS_CACHE_SECONDS
        {
            return parse_jwks(&value);
        }
        let value: Value = self
            .0
            .http
            .get(uri)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| format!("fetching jwks_uri failed: {e}"))?
            .json()
            .await
            .map_err(|e| format!("jwks_uri did not return JSON: {e}"))?;
        let set = parse_jwks(&value)?;
        if let Ok(mut cache) = self.0.jwks_cache.write() {
            cache.insert(uri.to_owned(), (value, now));
        }
        Ok(set)
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
    }
}
