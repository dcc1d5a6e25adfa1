//! The HTTP surface of the authorization server: discovery documents, the OAuth endpoints
//! (JSON), and the server-rendered login, terms, consent and app registration pages.
//!
//! `mod.rs` wires the routes; `oauth.rs` holds the machine endpoints, `pages.rs` the
//! browser pages, `session.rs` the page sessions. Handlers are thin: parse, call the
//! service, map the error. Pages carry no script, a strict Content-Security-Policy and a
//! CSRF token in every form.

mod oauth;
mod pages;
pub mod session;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower_http::cors::{Any, CorsLayer};

use crate::service::AuthService;

pub const AUTHORIZE_PATH: &str = "/oauth/authorize";
pub const TOKEN_PATH: &str = "/oauth/token";
pub const INTROSPECT_PATH: &str = "/oauth/introspect";
pub const REVOKE_PATH: &str = "/oauth/revoke";
pub const JWKS_PATH: &str = "/oauth/jwks";
pub const USERINFO_PATH: &str = "/oauth/userinfo";
pub const REGISTER_API_PATH: &str = "/oauth/register";
pub const LOGIN_PATH: &str = "/oauth/login";
pub const CALLBACK_PATH: &str = "/oauth/callback";
pub const TERMS_PATH: &str = "/oauth/terms";
pub const CONSENT_PATH: &str = "/oauth/consent";
pub const REGISTER_PAGE_PATH: &str = "/apps/register";
pub const STYLE_PATH: &str = "/oauth/static/style.css";

/// Every endpoint of the authorization server, to be merged into the server's router:
/// `/.well-known/smart-configuration` (also under the FHIR base path),
/// `/.well-known/openid-configuration`, `/oauth/*` and `/apps/register`.
pub fn router(service: AuthService) -> Router {
    let fhir_path = service.config().fhir_path.clone();
    // Machine endpoints are called from browser apps too (SMART JS clients): open CORS, no
    // cookies involved.
    let api = Router::new()
        .route(
            "/.well-known/smart-configuration",
            get(oauth::smart_configuration),
        )
        .route(
            &format!("{fhir_path}/.well-known/smart-configuration"),
            get(oauth::smart_configuration),
        )
        .route(
            "/.well-known/openid-configuration",
            get(oauth::openid_configuration),
        )
        .route(TOKEN_PATH, post(oauth::token))
        .route(INTROSPECT_PATH, post(oauth::introspect))
        .route(REVOKE_PATH, post(oauth::revoke))
        .route(JWKS_PATH, get(oauth::jwks))
        .route(USERINFO_PATH, get(oauth::userinfo))
        .route(REGISTER_API_PATH, post(oauth::register_api))
        .layer(
            CorsLayer::new()
                .allow_origin(Any)
                .allow_methods([axum::http::Method::GET, axum::http::Method::POST])
                .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE]),
        );
    let pages = Router::new()
        .route(
            AUTHORIZE_PATH,
            get(pages::authorize_get).post(pages::authorize_post),
        )
        .route(LOGIN_PATH, get(pages::login_page).post(pages::login_submit))
        .route(CALLBACK_PATH, get(pages::upstream_callback))
        .route(TERMS_PATH, get(pages::terms_page).post(pages::terms_submit))
        .route(
            CONSENT_PATH,
            get(pages::consent_page).post(pages::consent_submit),
        )
        .route(
            REGISTER_PAGE_PATH,
            get(pages::register_page).post(pages::register_submit),
        )
        .route(STYLE_PATH, get(stylesheet));
    api.merge(pages).with_state(service)
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../static/style.css"),
    )
        .into_response()
}

/// An HTML page with the security headers. `form_target` is an extra origin forms may
/// lead to (the client's redirect URI after consent: browsers apply `form-action` to the
/// redirect that follows a form post).
pub(crate) fn html(status: StatusCode, body: String, form_target: Option<&str>) -> Response {
    let form_action = match form_target.and_then(origin_of) {
        Some(origin) => format!("'self' {origin}"),
        None => "'self'".to_owned(),
    };
    let csp = format!(
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
    );
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if let Ok(value) = HeaderValue::from_str(&csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, value);
    }
    no_store(headers);
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

pub(crate) fn no_store(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// The `scheme://host[:port]` of a URL, for CSP source lists; `None` for private-use
/// schemes (native apps), which CSP source expressions allow as `scheme:`.
fn origin_of(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    match parsed.scheme() {
        "http" | "https" => Some(parsed.origin().ascii_serialization()),
        scheme => Some(format!("{scheme}:")),
    }
}

/// 303 See Other to `location` (after a form post the browser follows with GET).
pub(crate) fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    no_store(response.headers_mut());
    response
}

pub(crate) fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}
