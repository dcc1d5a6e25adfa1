//! The developer console at `/developer`: server-rendered pages in Finnish, Swedish and
//! English that work without JavaScript, where an application developer signs in, registers
//! sandbox applications, changes their redirect URIs, scopes, public keys and client
//! secrets, and sees per
//! application its recent sandbox traffic (requests by
//! interaction and answer, every rejected resource with its claimed profile and its
//! OperationOutcome's issues and FHIRPath expressions) and the acceptance report of a data
//! content (the same checks as `phr app acceptance`), and starts the withdrawn-grant probe
//! (the same step as `phr app probe APP --start`).
//!
//! `mod.rs` wires the routes (under the one security-header layer of [`crate::web`]) and
//! holds the developer's session (the authorization server's session store, kind
//! [`SessionKind::Developer`], with the web module's cookies and CSRF check); `pages.rs` the
//! thin handlers; `view.rs` what is shown of the traffic record; `texts.rs` the words.
//!
//! Sign-in: in sandbox mode the developer names themselves by e-mail address (as the
//! sandbox identity provider takes any test identity code). In production mode developers
//! sign in through their organisation's OpenID Connect provider (`[auth.developer_oidc]`,
//! [`phr_auth::flows::developer`]): the sign-in button starts the provider's authorization
//! (its `state`, `nonce` and PKCE verifier kept server-side, the browser holding only the
//! attempt's random value in an `HttpOnly`, `SameSite=Lax` cookie), and the callback creates
//! the same developer session as the sandbox's sign-in, for a developer of an organisation
//! registered in PHR. Without that provider every console page answers 501 in production,
//! saying what to configure. A developer sees only the applications they registered here.
//! Never shows a client secret after its registration page, a token, or a personal
//! identity code (the traffic record has none); never logs a code or a token.

mod pages;
pub mod texts;

pub(crate) use pages::contents;
pub mod view;

use std::convert::Infallible;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::Response;
use axum::routing::{get, post};
use phr_auth::SessionKind;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::web::{Cookies, Lang, PageLang, csrf};

pub const ROOT: &str = "/developer";
pub const LOGIN_PATH: &str = "/developer/login";
pub const LOGOUT_PATH: &str = "/developer/logout";
/// Production: starts the sign-in at the organisation's identity provider (a link, as the
/// portal's sign-in: a form post's redirect to another origin would meet the pages'
/// `form-action 'self'`).
pub const SIGN_IN_PATH: &str = "/developer/sign-in";
/// Production: where the organisation's identity provider sends the developer back.
pub const CALLBACK_PATH: &str = "/developer/callback";
pub const REGISTER_PATH: &str = "/developer/register";
/// An application's page is `/developer/apps/{id}`, its report `…/acceptance?content=CODE`.
pub const APPS_PATH: &str = "/developer/apps";

/// Seconds of inactivity after which the developer must sign in again.
pub const IDLE_TIMEOUT: i64 = 60 * 60;
/// Seconds a session lasts at most.
pub const LIFETIME: i64 = 12 * 60 * 60;
/// The session cookie.
const COOKIE: &str = "phr_developer";
/// The sign-in form's CSRF cookie (there is no session before signing in).
const LOGIN_CSRF_COOKIE: &str = "phr_developer_login";
/// The sign-in attempt at the organisation's identity provider (production).
const ATTEMPT_COOKIE: &str = "phr_developer_oidc";

pub fn router(state: &AppState) -> Router {
    Router::new()
        .route(ROOT, get(pages::home))
        .route("/developer/", get(|| async { crate::web::see_other(ROOT) }))
        .route(LOGIN_PATH, post(pages::login))
        .route(LOGOUT_PATH, post(pages::logout))
        .route(SIGN_IN_PATH, get(pages::sign_in))
        .route(CALLBACK_PATH, get(pages::callback))
        .route(
            REGISTER_PATH,
            get(pages::register_page).post(pages::register_submit),
        )
        .route("/developer/apps/{id}", get(pages::app_page))
        .route(
            "/developer/apps/{id}/redirects",
            post(pages::redirects_submit),
        )
        .route("/developer/apps/{id}/scope", post(pages::scope_submit))
        .route("/developer/apps/{id}/keys", post(pages::keys_submit))
        .route("/developer/apps/{id}/secret", post(pages::secret_submit))
        .route("/developer/apps/{id}/acceptance", get(pages::acceptance))
        .route("/developer/apps/{id}/probe", post(pages::probe_submit))
        .layer(axum::middleware::from_fn(crate::web::headers::layer))
        .with_state(state.clone())
}

/// What a developer session holds: its CSRF token and who signed in. In the sandbox the
/// developer is their e-mail address; in production their organisation provider's
/// identifier (`oidc:<organisation OID>:<subject>`), with the name, e-mail address and
/// organisation it named.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionData {
    pub csrf: String,
    pub developer: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The organisation's OID and name (production).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<(String, String)>,
}

impl SessionData {
    /// How the page names the signed-in developer.
    pub fn shown_name(&self) -> String {
        let who = self
            .name
            .as_ref()
            .or(self.email.as_ref())
            .unwrap_or(&self.developer);
        match &self.org {
            Some((_, org)) => format!("{who} ({org})"),
            None => who.clone(),
        }
    }
}

/// Whether developers can sign in here: in the sandbox by e-mail address, in production at
/// their organisation's identity provider when one is configured.
pub fn console_open(state: &AppState) -> bool {
    state.auth.config().mode.is_sandbox() || phr_auth::flows::developer::available(&state.auth)
}

/// A signed-in developer.
pub struct Developer {
    pub token: String,
    pub data: SessionData,
}

/// What every console request carries: language, path and query, and the developer if
/// signed in.
pub struct Ctx {
    pub lang: Lang,
    pub page_lang: PageLang,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub developer: Option<Developer>,
    pub cookies: Cookies,
    /// Production mode (developers sign in at their organisation's identity provider).
    pub production: bool,
}

impl Ctx {
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// Whether a form carries the signed-in developer's CSRF token.
    pub fn csrf_ok(&self, form: &[(String, String)]) -> bool {
        self.developer
            .as_ref()
            .is_some_and(|d| csrf::check(&d.data.csrf, form))
    }
}

impl FromRequestParts<AppState> for Ctx {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Infallible> {
        let query: Vec<(String, String)> = parts
            .uri
            .query()
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .into_owned()
                    .collect()
            })
            .unwrap_or_default();
        let cookies = Cookies::for_public_url(&state.base_url);
        let page_lang = PageLang::of(&query, &parts.headers, cookies);
        let developer = match cookies.read(&parts.headers, COOKIE) {
            Some(token) if token.len() <= 128 && console_open(state) => {
                let token = token.to_owned();
                let auth = state.auth.clone();
                let found = crate::web::blocking(move || {
                    let data = auth
                        .sessions()
                        .get(SessionKind::Developer, &token, IDLE_TIMEOUT);
                    (token, data)
                })
                .await;
                match found {
                    Some((token, Ok(Some(json)))) => serde_json::from_str::<SessionData>(&json)
                        .ok()
                        .map(|data| Developer { token, data }),
                    Some((_, Err(e))) => {
                        tracing::error!(error = %e, "could not read a developer session");
                        None
                    }
                    _ => None,
                }
            }
            _ => None,
        };
        Ok(Ctx {
            lang: page_lang.lang,
            page_lang,
            path: parts.uri.path().to_owned(),
            query,
            developer,
            cookies,
            production: !state.auth.config().mode.is_sandbox(),
        })
    }
}

/// Sets (or, with `max_age` 0, deletes) the session cookie.
fn set_session_cookie(ctx: &Ctx, response: &mut Response, value: &str, max_age: i64) {
    ctx.cookies.add(response, COOKIE, value, max_age);
}

/// A developer's sign-in name: an e-mail address, trimmed and lower-cased; `None` when it is
/// not one (or holds anything that reads as a personal identity code).
pub fn developer_identity(text: &str) -> Option<String> {
    let email = text.trim().to_lowercase();
    let (local, domain) = email.split_once('@')?;
    let plausible = (3..=254).contains(&email.chars().count())
        && !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && email
            .chars()
            .all(|c| !c.is_whitespace() && !c.is_control() && !"<>\"'`\\,;:()[]".contains(c));
    let no_identity_code = phr_auth::traffic::redact_identity_codes(&email) == email;
    (plausible && no_identity_code).then_some(email)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_developer_is_named_by_an_email_address() {
        assert_eq!(
            developer_identity("  Dev@Example.FI "),
            Some("dev@example.fi".to_string())
        );
        for bad in [
            "",
            "dev",
            "dev@localhost",
            "@example.fi",
            "a b@example.fi",
            "dev@example.fi@x.fi",
            "<script>@x.fi",
            "010190-901R@example.fi",
        ] {
            assert_eq!(developer_identity(bad), None, "{bad}");
        }
    }
}
