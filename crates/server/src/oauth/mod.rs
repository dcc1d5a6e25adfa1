//! The HTTP face of the authorization server: discovery documents, the OAuth endpoints
//! (JSON, `api.rs`) and the server-rendered login, terms and consent pages
//! (`pages.rs`, words in `texts.rs`, templates in `templates/oauth/`).
//!
//! Handlers are thin: parse the request, call the auth domain's flow on a blocking thread
//! (`phr_auth::flows`), map the answer to a response. Cookies, the CSRF check, the security
//! headers and page chrome come from [`crate::web`]. This module owns the OAuth paths; the
//! domain learns the URLs it must name from [`configure`].

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod api;
mod pages;
pub mod texts;

use axum::Router;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use phr_auth::{AuthConfig, AuthService, Endpoints};

use crate::web::Cookies;

pub const AUTHORIZE_PATH: &str = "/oauth/authorize";
pub const TOKEN_PATH: &str = "/oauth/token";
pub const INTROSPECT_PATH: &str = "/oauth/introspect";
pub const REVOKE_PATH: &str = "/oauth/revoke";
pub const JWKS_PATH: &str = "/oauth/jwks";
pub const USERINFO_PATH: &str = "/oauth/userinfo";
pub const REGISTER_API_PATH: &str = "/oauth/register";
/// Where an organisation's system gets a SMART EHR `launch` for its professional app.
pub const LAUNCH_PATH: &str = "/oauth/launch";
pub const LOGIN_PATH: &str = "/oauth/login";
/// Where a professional application's user signs in (the test-professional page in sandbox).
pub const PROFESSIONAL_LOGIN_PATH: &str = "/oauth/professional-login";
/// Where the professionals' upstream identity provider sends them back.
pub const PROFESSIONAL_CALLBACK_PATH: &str = "/oauth/professional-callback";
pub const CALLBACK_PATH: &str = "/oauth/callback";
pub const TERMS_PATH: &str = "/oauth/terms";
pub const CONSENT_PATH: &str = "/oauth/consent";
/// Where the sandbox registration page was: it redirects to the developer console's.
pub const OLD_REGISTER_PAGE_PATH: &str = "/apps/register";
pub const STYLE_PATH: &str = "/oauth/static/style.css";

async fn moved_register_page() -> axum::response::Response {
    axum::response::Redirect::permanent(crate::developer::REGISTER_PATH).into_response()
}

/// The public URLs of the endpoints served here, for the auth domain.
pub fn endpoints(public_url: &str) -> Endpoints {
    let base = public_url.trim_end_matches('/');
    let at = |path: &str| format!("{base}{path}");
    Endpoints {
        authorization: at(AUTHORIZE_PATH),
        token: at(TOKEN_PATH),
        introspection: at(INTROSPECT_PATH),
        revocation: at(REVOKE_PATH),
        jwks: at(JWKS_PATH),
        userinfo: at(USERINFO_PATH),
        registration: at(REGISTER_API_PATH),
        upstream_callback: at(CALLBACK_PATH),
        professional_callback: at(PROFESSIONAL_CALLBACK_PATH),
        developer_callback: at(crate::developer::CALLBACK_PATH),
    }
}

/// Points an auth configuration at this server: its public URL is the token issuer, tokens
/// are for the FHIR base under it, and the endpoints are served here.
pub fn configure(config: &mut AuthConfig, public_url: &str, fhir_path: &str) {
    config.issuer = public_url.to_owned();
    config.fhir_path = fhir_path.to_owned();
    config.endpoints = endpoints(public_url);
}

/// What the OAuth handlers reach.
#[derive(Clone)]
pub struct OAuth {
    pub auth: AuthService,
    pub cookies: Cookies,
}

/// Every endpoint of the authorization server, to be merged into the server's router:
/// `/.well-known/smart-configuration` (also under the FHIR base path),
/// `/.well-known/openid-configuration`, `/oauth/*`, and the old registration page's address (a redirect).
pub fn router(auth: AuthService) -> Router {
    let fhir_path = auth.config().fhir_path.clone();
    let state = OAuth {
        cookies: Cookies::for_public_url(auth.config().issuer()),
        auth,
    };
    // Machine endpoints are called from browser apps too (SMART JS clients): the server's
    // CORS layer (`web::cors`) answers them.
    let api = Router::new()
        .route(
            "/.well-known/smart-configuration",
            get(api::smart_configuration),
        )
        .route(
            &format!("{fhir_path}/.well-known/smart-configuration"),
            get(api::smart_configuration),
        )
        .route(
            "/.well-known/openid-configuration",
            get(api::openid_configuration),
        )
        .route(TOKEN_PATH, post(api::token))
        .route(INTROSPECT_PATH, post(api::introspect))
        .route(REVOKE_PATH, post(api::revoke))
        .route(JWKS_PATH, get(api::jwks))
        .route(USERINFO_PATH, get(api::userinfo))
        .route(REGISTER_API_PATH, post(api::register))
        .route(LAUNCH_PATH, post(api::launch));
    let pages = Router::new()
        .route(
            AUTHORIZE_PATH,
            get(pages::authorize_get).post(pages::authorize_post),
        )
        .route(LOGIN_PATH, get(pages::login_page).post(pages::login_submit))
        .route(
            PROFESSIONAL_LOGIN_PATH,
            get(pages::professional_login_page).post(pages::professional_login_submit),
        )
        .route(CALLBACK_PATH, get(pages::upstream_callback))
        .route(
            PROFESSIONAL_CALLBACK_PATH,
            get(pages::professional_callback),
        )
        .route(TERMS_PATH, get(pages::terms_page).post(pages::terms_submit))
        .route(
            CONSENT_PATH,
            get(pages::consent_page).post(pages::consent_submit),
        )
        // Bookmarks and documentation of the old address still arrive (308 keeps a POST).
        .route(
            OLD_REGISTER_PAGE_PATH,
            get(moved_register_page).post(moved_register_page),
        )
        .route(
            STYLE_PATH,
            get(|| async { crate::web::stylesheet(include_str!("../../static/oauth.css")) }),
        )
        .layer(axum::middleware::from_fn(crate::web::headers::layer));
    api.merge(pages).with_state(state)
}
