//! Cross-origin calls from browser apps (CORS) to the FHIR API and the authorization server's
//! machine endpoints, decided once, in one layer outside every route.
//!
//! Which origins may call: the origins of the registered applications' `http`/`https`
//! redirect URIs (of applications usable in the server's mode), the server's own origin, and
//! the configured `[cors] extra_origins`. The registry is read again when an unknown origin
//! calls (one reload at a time), so an application registered a moment ago works at once.
//!
//! What they get: the origin echoed (never `*`) with `Vary: Origin`, the methods and headers
//! a SMART client sends, and the response headers it reads (`Location`, `ETag`,
//! `Retry-After`, ...). No `Access-Control-Allow-Credentials` at all: the API takes bearer
//! tokens, never cookies. The public discovery documents (`/metadata`, the SMART and OpenID
//! configurations, the JWKS) answer any origin with `*`: they hold nothing personal and a
//! browser app reads them before it is known.
//!
//! A preflight from an origin that may not call is refused with 403 and an
//! OperationOutcome; an actual request from it is served without CORS headers, so the browser
//! keeps the answer from the page. The browser pages (login, consent, portal) are not
//! cross-origin resources and get no CORS headers.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use phr_auth::AuthService;
use phr_service::Error;
use serde::Deserialize;

use crate::AppState;
use crate::fhir::error::FhirError;

/// The `[cors]` table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CorsConfig {
    /// Origins (`https://app.example.fi`) allowed besides those of the registered
    /// applications' redirect URIs.
    pub extra_origins: Vec<String>,
}

impl CorsConfig {
    /// Checks that every extra origin is an `http`/`https` origin.
    pub fn check(&self) -> Result<(), String> {
        for origin in &self.extra_origins {
            if origin_of(origin).is_none() {
                return Err(format!(
                    "cors.extra_origins: '{origin}' is not an http or https origin"
                ));
            }
        }
        Ok(())
    }
}

const ALLOW_METHODS: &str = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS";
const ALLOW_HEADERS: &str = "Authorization, Content-Type, Accept, Prefer, If-Match, \
     If-None-Match, If-None-Exist, If-Modified-Since, X-Request-Id";
const EXPOSE_HEADERS: &str =
    "Location, Content-Location, ETag, Last-Modified, Retry-After, WWW-Authenticate";
/// How long a browser may reuse a preflight's answer, in seconds.
const MAX_AGE: &str = "600";

/// The origins that may call, as loaded from the registry, and the fixed ones.
pub struct Origins {
    fixed: HashSet<String>,
    registered: RwLock<Arc<HashSet<String>>>,
    /// One reload at a time; the counter tells a waiter whether a reload happened meanwhile.
    reloads: tokio::sync::Mutex<u64>,
    auth: AuthService,
}

impl Origins {
    /// The fixed origins (the server's own and the configured ones); the registered ones are
    /// read on first use.
    pub fn new(config: &CorsConfig, own_url: &str, auth: AuthService) -> Origins {
        let fixed = config
            .extra_origins
            .iter()
            .map(String::as_str)
            .chain([own_url])
            .filter_map(origin_of)
            .collect();
        Origins {
            fixed,
            registered: RwLock::new(Arc::new(HashSet::new())),
            reloads: tokio::sync::Mutex::new(0),
            auth,
        }
    }

    fn known(&self, origin: &str) -> bool {
        self.fixed.contains(origin)
            || self
                .registered
                .read()
                .map(|set| set.contains(origin))
                .unwrap_or(false)
    }

    /// Whether `origin` may call the API, reading the registry again when it is not known.
    pub async fn allows(&self, origin: &str) -> bool {
        if origin_of(origin).as_deref() != Some(origin) {
            // `null`, a path, a wildcard: never an allowed origin.
            return false;
        }
        if self.known(origin) {
            return true;
        }
        let seen = *self.reloads.lock().await;
        let mut guard = self.reloads.lock().await;
        if *guard == seen {
            let auth = self.auth.clone();
            match tokio::task::spawn_blocking(move || registered_origins(&auth)).await {
                Ok(Ok(set)) => {
                    if let Ok(mut registered) = self.registered.write() {
                        *registered = Arc::new(set);
                    }
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "cannot read the application registry"),
                Err(e) => tracing::warn!(error = %e, "reading the application registry failed"),
            }
            *guard += 1;
        }
        drop(guard);
        self.known(origin)
    }
}

/// The origins of the `http`/`https` redirect URIs of every application usable now.
fn registered_origins(auth: &AuthService) -> Result<HashSet<String>, phr_auth::AuthError> {
    let mode = auth.config().mode;
    Ok(auth
        .list_apps()?
        .iter()
        .filter(|app| app.status.is_usable(mode))
        .flat_map(|app| app.redirect_uris.iter())
        .filter_map(|uri| origin_of(uri))
        .collect())
}

/// The ASCII origin (`https://host[:port]`) of an `http`/`https` URL.
pub fn origin_of(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    matches!(parsed.scheme(), "http" | "https")
        .then(|| parsed.origin().ascii_serialization())
        .filter(|o| o != "null")
}

/// Which CORS rules a path falls under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// Discovery documents: any origin, `*`.
    Public,
    /// The FHIR API and the OAuth machine endpoints: allowed origins only.
    Api,
}

fn scope(path: &str) -> Option<Scope> {
    let fhir = crate::fhir::BASE_PATH;
    if path.ends_with("/.well-known/smart-configuration")
        || path == "/.well-known/openid-configuration"
        || path == crate::oauth::JWKS_PATH
        || path == format!("{fhir}/metadata")
    {
        return Some(Scope::Public);
    }
    let under_fhir = path == fhir || path.starts_with(&format!("{fhir}/"));
    let oauth_api = [
        crate::oauth::TOKEN_PATH,
        crate::oauth::INTROSPECT_PATH,
        crate::oauth::REVOKE_PATH,
        crate::oauth::USERINFO_PATH,
        crate::oauth::REGISTER_API_PATH,
    ]
    .contains(&path);
    (under_fhir || oauth_api).then_some(Scope::Api)
}

/// The layer: `router.layer(axum::middleware::from_fn_with_state(state, web::cors::layer))`.
pub async fn layer(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let origin = request
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (Some(origin), Some(scope)) = (origin, scope(request.uri().path())) else {
        return next.run(request).await;
    };
    let preflight = request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let allowed = match scope {
        Scope::Public => Some(HeaderValue::from_static("*")),
        Scope::Api => {
            if state.cors.allows(&origin).await {
                HeaderValue::from_str(&origin).ok()
            } else {
                None
            }
        }
    };
    if preflight {
        return match allowed {
            Some(value) => {
                let mut response = StatusCode::NO_CONTENT.into_response();
                let headers = response.headers_mut();
                allow(headers, value, scope);
                headers.insert(
                    header::ACCESS_CONTROL_ALLOW_METHODS,
                    HeaderValue::from_static(ALLOW_METHODS),
                );
                headers.insert(
                    header::ACCESS_CONTROL_ALLOW_HEADERS,
                    HeaderValue::from_static(ALLOW_HEADERS),
                );
                headers.insert(
                    header::ACCESS_CONTROL_MAX_AGE,
                    HeaderValue::from_static(MAX_AGE),
                );
                response
            }
            None => {
                state.limits.refusals.count(crate::limits::Refusal::Cors);
                let mut response = FhirError(Error::forbidden(
                    "this origin may not call the API from a browser: register the \
                     application's redirect URI on it, or ask the operator to allow it",
                ))
                .into_response();
                response
                    .headers_mut()
                    .insert(header::VARY, HeaderValue::from_static("Origin"));
                response
            }
        };
    }
    let mut response = next.run(request).await;
    match allowed {
        Some(value) => allow(response.headers_mut(), value, scope),
        None => {
            response
                .headers_mut()
                .append(header::VARY, HeaderValue::from_static("Origin"));
        }
    }
    response
}

fn allow(headers: &mut HeaderMap, origin: HeaderValue, scope: Scope) {
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(EXPOSE_HEADERS),
    );
    if scope == Scope::Api {
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
    }
    // Bearer tokens only: credentials are never allowed, with `*` or otherwise.
    headers.remove(header::ACCESS_CONTROL_ALLOW_CREDENTIALS);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_scheme_host_and_port() {
        assert_eq!(
            origin_of("https://app.example.fi/cb?x=1").as_deref(),
            Some("https://app.example.fi")
        );
        assert_eq!(
            origin_of("http://127.0.0.1:9/callback").as_deref(),
            Some("http://127.0.0.1:9")
        );
        assert_eq!(
            origin_of("https://app.example.fi:443/").as_deref(),
            Some("https://app.example.fi")
        );
        assert_eq!(origin_of("fi.example.app:/cb"), None);
        assert_eq!(origin_of("null"), None);
        assert_eq!(origin_of("*"), None);
    }

    #[test]
    fn scopes_cover_the_api_and_the_discovery_documents() {
        assert_eq!(scope("/fhir/r4/Observation"), Some(Scope::Api));
        assert_eq!(scope("/fhir/r4"), Some(Scope::Api));
        assert_eq!(scope("/fhir/r4/metadata"), Some(Scope::Public));
        assert_eq!(
            scope("/fhir/r4/.well-known/smart-configuration"),
            Some(Scope::Public)
        );
        assert_eq!(scope(crate::oauth::TOKEN_PATH), Some(Scope::Api));
        assert_eq!(scope(crate::oauth::AUTHORIZE_PATH), None);
        assert_eq!(scope("/portal"), None);
        assert_eq!(scope("/fhir/r4x"), None);
    }

    #[test]
    fn extra_origins_must_be_origins() {
        let ok = CorsConfig {
            extra_origins: vec!["https://app.example.fi".into()],
        };
        assert!(ok.check().is_ok());
        let bad = CorsConfig {
            extra_origins: vec!["app.example.fi".into()],
        };
        assert!(bad.check().is_err());
    }
}
