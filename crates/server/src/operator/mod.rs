//! The operator page at `/operator`: server-rendered pages in Finnish, Swedish and English
//! that work without JavaScript, where the service operator (Kela's role) sees the
//! registered applications with their status, an application's accepted data contents,
//! joint-testing rounds and acceptance report per data content, records a test round and
//! accepts an application for the contents that passed. Every change goes through the same
//! step as the operator command (`phr app round`, `phr app accept --content`) and is audited.
//!
//! Sign-in: there is no operator password and no operator identity provider. An operator
//! who can run `phr operator login` (which needs the data folder or the database, i.e. the
//! operator's own access to the service) gets a one-time link, good for a few minutes.
//! Following it shows a form (a link fetched by a mail scanner or a preview signs no one in);
//! posting it uses the link up and starts a short session (the authorization server's
//! session store, kind [`SessionKind::Operator`], so it works on several nodes and on
//! PostgreSQL) in an `HttpOnly`, `SameSite=Lax` cookie. Every form carries the session's
//! CSRF token; pages have the security headers of every page ([`crate::web::headers`]).
//!
//! `mod.rs` wires the routes and holds the session; `pages.rs` the thin handlers;
//! `texts.rs` the words. Never shows a personal identity code or a token.

mod pages;
pub mod texts;

use std::convert::Infallible;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::routing::{get, post};
use phr_auth::SessionKind;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::web::{Cookies, Lang, PageLang, csrf};

pub const ROOT: &str = "/operator";
/// Where a sign-in link leads: `/operator/login?link=…`.
pub const LOGIN_PATH: &str = "/operator/login";
pub const LOGOUT_PATH: &str = "/operator/logout";

/// Seconds of inactivity after which the operator must sign in again.
pub const IDLE_TIMEOUT: i64 = 30 * 60;
/// Seconds a session lasts at most.
pub const LIFETIME: i64 = 8 * 60 * 60;
/// How long a sign-in link is good for by default (minutes).
pub const LINK_MINUTES: i64 = 10;
/// The session cookie.
const COOKIE: &str = "phr_operator";
/// The sign-in form's CSRF cookie (there is no session before signing in).
const LOGIN_CSRF_COOKIE: &str = "phr_operator_login";

pub fn router(state: &AppState) -> Router {
    Router::new()
        .route(ROOT, get(pages::home))
        .route("/operator/", get(|| async { crate::web::see_other(ROOT) }))
        .route(LOGIN_PATH, get(pages::login_page).post(pages::login))
        .route(LOGOUT_PATH, post(pages::logout))
        .route("/operator/apps/{id}", get(pages::app_page))
        .route("/operator/apps/{id}/acceptance", get(pages::acceptance))
        .route("/operator/apps/{id}/round", post(pages::round))
        .route("/operator/apps/{id}/accept", post(pages::accept))
        .layer(axum::middleware::from_fn(crate::web::headers::layer))
        .with_state(state.clone())
}

/// What an operator session holds: its CSRF token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionData {
    pub csrf: String,
}

/// A signed-in operator.
pub struct Operator {
    pub token: String,
    pub data: SessionData,
}

/// What every operator request carries: language, path and query, and the operator if
/// signed in.
pub struct Ctx {
    pub lang: Lang,
    pub page_lang: PageLang,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub operator: Option<Operator>,
    pub cookies: Cookies,
}

impl Ctx {
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// Whether a form carries the signed-in operator's CSRF token.
    pub fn csrf_ok(&self, form: &[(String, String)]) -> bool {
        self.operator
            .as_ref()
            .is_some_and(|o| csrf::check(&o.data.csrf, form))
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
        let operator = match cookies.read(&parts.headers, COOKIE) {
            Some(token) if token.len() <= 128 => {
                let token = token.to_owned();
                let auth = state.auth.clone();
                let found = crate::web::blocking(move || {
                    let data = auth
                        .sessions()
                        .get(SessionKind::Operator, &token, IDLE_TIMEOUT);
                    (token, data)
                })
                .await;
                match found {
                    Some((token, Ok(Some(json)))) => serde_json::from_str::<SessionData>(&json)
                        .ok()
                        .map(|data| Operator { token, data }),
                    Some((_, Err(e))) => {
                        tracing::error!(error = %e, "could not read an operator session");
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
            operator,
            cookies,
        })
    }
}
