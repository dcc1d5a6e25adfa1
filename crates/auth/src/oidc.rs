//! OpenID Connect relying party for production logins: the citizen authenticates at an
//! upstream provider (e.g. Suomi.fi e-Identification), which returns their identity code
//! in a configurable claim.
//!
//! Authorization-code flow with PKCE S256, `state` and `nonce`; the ID token's signature is
//! checked against the provider's JWKS (re-fetched once when a `kid` is unknown), and
//! `iss`, `aud`, `exp` and `nonce` are verified. When the identity-code claim is not in the
//! ID token it is read from the userinfo endpoint. The identity code never leaves this
//! module except as a parsed [`Hetu`].

use std::sync::RwLock;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::{OidcUpstreamConfig, UpstreamClientAuth};
use crate::error::{AuthError, Result};
use crate::hetu::Hetu;
use crate::secrets::{pkce_s256_challenge, random_token};

const ID_TOKEN_ALGORITHMS: [Algorithm; 6] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::PS256,
];
/// Discovery and keys are reused this long before being fetched again.
const DISCOVERY_TTL: i64 = 3600;

#[derive(Debug, Clone, Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    #[serde(default)]
    userinfo_endpoint: Option<String>,
}

#[derive(Clone)]
struct Discovered {
    discovery: Discovery,
    jwks: JwkSet,
    fetched_at: i64,
}

/// The per-login secrets kept in the citizen's session between redirect and callback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamLogin {
    pub state: String,
    pub nonce: String,
    pub verifier: String,
}

impl UpstreamLogin {
    pub fn new() -> Self {
        UpstreamLogin {
            state: random_token(),
            nonce: random_token(),
            verifier: random_token(),
        }
    }
}

impl Default for UpstreamLogin {
    fn default() -> Self {
        Self::new()
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    id_token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
}

pub(crate) struct OidcClient {
    config: OidcUpstreamConfig,
    redirect_uri: String,
    http: reqwest::Client,
    cache: RwLock<Option<Discovered>>,
}

impl OidcClient {
    pub fn new(config: OidcUpstreamConfig, redirect_uri: String) -> Result<OidcClient> {
        url::Url::parse(&config.issuer)
            .map_err(|e| AuthError::Config(format!("oidc issuer: {e}")))?;
        if config.issuer.starts_with("https://") && !cfg!(feature = "native-tls") {
            return Err(AuthError::Config(
                "the oidc issuer is https but phr-auth was built without the native-tls feature"
                    .into(),
            ));
        }
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| AuthError::Config(format!("HTTP client: {e}")))?;
        Ok(OidcClient {
            config,
            redirect_uri,
            http,
            cache: RwLock::new(None),
        })
    }

    async fn discovered(&self, now: i64, force: bool) -> Result<Discovered> {
        if !force
            && let Some(hit) = self.cache.read().ok().and_then(|c| c.clone())
            && now - hit.fetched_at < DISCOVERY_TTL
        {
            return Ok(hit);
        }
        let issuer = self.config.issuer.trim_end_matches('/');
        let discovery: Discovery = self
            .get_json(&format!("{issuer}/.well-known/openid-configuration"))
            .await?;
        if discovery.issuer.trim_end_matches('/') != issuer {
            return Err(AuthError::Upstream("discovery names another issuer".into()));
        }
        let jwks: JwkSet = self.get_json(&discovery.jwks_uri).await?;
        let found = Discovered {
            discovery,
            jwks,
            fetched_at: now,
        };
        if let Ok(mut cache) = self.cache.write() {
            *cache = Some(found.clone());
        }
        Ok(found)
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T> {
        self.http
            .get(url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| AuthError::Upstream(format!("GET {url}: {e}")))?
            .json()
            .await
            .map_err(|e| AuthError::Upstream(format!("GET {url}: {e}")))
    }

    /// Where to send the citizen's browser.
    pub async fn authorization_url(&self, login: &UpstreamLogin, now: i64) -> Result<String> {
        let found = self.discovered(now, false).await?;
        let mut url = url::Url::parse(&found.discovery.authorization_endpoint)
            .map_err(|e| AuthError::Upstream(format!("authorization endpoint: {e}")))?;
        let mut scope = vec!["openid".to_owned()];
        scope.extend(self.config.scopes.iter().cloned());
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", &self.config.client_id)
                .append_pair("redirect_uri", &self.redirect_uri)
                .append_pair("scope", &scope.join(" "))
                .append_pair("state", &login.state)
                .append_pair("nonce", &login.nonce)
                .append_pair("code_challenge", &pkce_s256_challenge(&login.verifier))
                .append_pair("code_challenge_method", "S256");
            if let Some(acr) = &self.config.acr_values {
                q.append_pair("acr_values", acr);
            }
        }
        Ok(url.to_string())
    }

    /// Exchanges the code, verifies the ID token and returns the identity code.
    pub async fn finish(&self, code: &str, login: &UpstreamLogin, now: i64) -> Result<Hetu> {
        let claims = self.finish_claims(code, login, now).await?;
        let hetu_text = claims
            .get(&self.config.hetu_claim)
            .and_then(Value::as_str)
            .ok_or_else(|| {
                AuthError::Upstream(format!(
                    "no {} claim from the identity provider",
                    self.config.hetu_claim
                ))
            })?;
        Hetu::parse(hetu_text).map_err(|e| AuthError::Upstream(format!("identity code claim: {e}")))
    }

    /// Exchanges the code, verifies the ID token and returns its claims; when the ID token
    /// lacks the configured claim, the userinfo answer's claims are added (its `sub` must be
    /// the ID token's).
    pub async fn finish_claims(
        &self,
        code: &str,
        login: &UpstreamLogin,
        now: i64,
    ) -> Result<serde_json::Map<String, Value>> {
        let found = self.discovered(now, false).await?;
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", self.redirect_uri.as_str()),
            ("code_verifier", login.verifier.as_str()),
        ];
        let mut request = self.http.post(&found.discovery.token_endpoint);
        match self.config.client_auth {
            UpstreamClientAuth::ClientSecretBasic => {
                let enc = |s: &str| {
                    url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>()
                };
                request = request.basic_auth(
                    enc(&self.config.client_id),
                    Some(enc(&self.config.client_secret)),
                );
            }
            UpstreamClientAuth::ClientSecretPost => {
                form.push(("client_id", &self.config.client_id));
                form.push(("client_secret", &self.config.client_secret));
            }
        }
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let answer: TokenAnswer = request
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| AuthError::Upstream(format!("token request: {e}")))?
            .json()
            .await
            .map_err(|e| AuthError::Upstream(format!("token response: {e}")))?;
        let id_token = answer
            .id_token
            .ok_or_else(|| AuthError::Upstream("no id_token in the token response".into()))?;
        let mut claims = self.verify_id_token(&id_token, &login.nonce, now).await?;
        if claims.get(&self.config.hetu_claim).is_none() {
            let info = self
                .userinfo(&found, answer.access_token.as_deref(), &claims)
                .await?;
            for (name, value) in info {
                claims.entry(name).or_insert(value);
            }
        }
        Ok(claims)
    }

    async fn verify_id_token(
        &self,
        token: &str,
        nonce: &str,
        now: i64,
    ) -> Result<serde_json::Map<String, Value>> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| AuthError::Upstream("malformed id_token".into()))?;
        if !ID_TOKEN_ALGORITHMS.contains(&header.alg) {
            return Err(AuthError::Upstream(
                "id_token algorithm not accepted".into(),
            ));
        }
        let mut found = self.discovered(now, false).await?;
        let pick = |set: &JwkSet| match &header.kid {
            Some(kid) => set.find(kid).cloned(),
            None if set.keys.len() == 1 => set.keys.first().cloned(),
            None => None,
        };
        let jwk = match pick(&found.jwks) {
            Some(jwk) => jwk,
            None => {
                // The provider may have rotated its keys.
                found = self.discovered(now, true).await?;
                pick(&found.jwks).ok_or_else(|| {
                    AuthError::Upstream("id_token signed with an unknown key".into())
                })?
            }
        };
        let key = DecodingKey::from_jwk(&jwk)
            .map_err(|e| AuthError::Upstream(format!("provider key: {e}")))?;
        let mut validation = Validation::new(header.alg);
        validation.validate_exp = false;
        validation.set_audience(&[&self.config.client_id]);
        validation.set_issuer(&[&found.discovery.issuer]);
        validation.set_required_spec_claims(&["iss", "sub", "aud", "exp"]);
        let claims =
            jsonwebtoken::decode::<serde_json::Map<String, Value>>(token, &key, &validation)
                .map_err(|e| AuthError::Upstream(format!("id_token rejected: {:?}", e.kind())))?
                .claims;
        let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or(0);
        if exp + 60 < now {
            return Err(AuthError::Upstream("id_token expired".into()));
        }
        if claims.get("nonce").and_then(Value::as_str) != Some(nonce) {
            return Err(AuthError::Upstream("id_token nonce does not match".into()));
        }
        Ok(claims)
    }

    async fn userinfo(
        &self,
        found: &Discovered,
        access_token: Option<&str>,
        id_claims: &serde_json::Map<String, Value>,
    ) -> Result<serde_json::Map<String, Value>> {
        let missing = || {
            AuthError::Upstream(format!(
                "no {} claim from the identity provider",
                self.config.hetu_claim
            ))
        };
        let endpoint = found
            .discovery
            .userinfo_endpoint
            .as_deref()
            .ok_or_else(missing)?;
        let token = access_token.ok_or_else(missing)?;
        let info: serde_json::Map<String, Value> = self
            .http
            .get(endpoint)
            .bearer_auth(token)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| AuthError::Upstream(format!("userinfo: {e}")))?
            .json()
            .await
            .map_err(|e| AuthError::Upstream(format!("userinfo: {e}")))?;
        // OIDC Core §5.3.2: the userinfo sub must equal the ID token's.
        if info.get("sub") != id_claims.get("sub") {
            return Err(AuthError::Upstream(
                "userinfo sub differs from the id_token".into(),
            ));
        }
        Ok(info)
    }
}
