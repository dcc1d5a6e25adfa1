//! The portal's browser session: a use of the authorization server's one session store
//! (kind [`SessionKind::Portal`]), with the cookie, CSRF and language rules of
//! [`crate::web`]. The record holds the CSRF token, the pseudonymous Patient id after login,
//! and during login the OAuth `state` and PKCE verifier. It ends after [`IDLE_TIMEOUT`]
//! seconds without use and [`LIFETIME`] seconds after login in any case.

use std::convert::Infallible;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::Response;
use phr_auth::SessionKind;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::web::{Cookies, Lang, PageLang, csrf};

/// Seconds of inactivity after which the citizen must log in again.
pub const IDLE_TIMEOUT: i64 = 15 * 60;
/// Seconds a session lasts at most.
pub const LIFETIME: i64 = 12 * 60 * 60;
/// Seconds a started login may take (identity provider, terms).
pub const LOGIN_TIMEOUT: i64 = 10 * 60;
/// The session cookie.
const COOKIE: &str = "phr_portal";

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SessionData {
    pub csrf: String,
    /// Set once the citizen has logged in.
    pub patient_id: Option<String>,
    /// A login in progress.
    pub login: Option<PendingLogin>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingLogin {
    pub state: String,
    pub verifier: String,
}

pub struct Session {
    pub token: String,
    pub data: SessionData,
}

/// What every portal request carries: language, path and query, and the session if any.
pub struct Ctx {
    pub lang: Lang,
    /// `?lang=` was given: remember it in a cookie.
    pub page_lang: PageLang,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub session: Option<Session>,
    pub cookies: Cookies,
}

/// A logged-in citizen.
pub struct Citizen<'a> {
    pub patient_id: &'a str,
}

impl Ctx {
    pub fn citizen(&self) -> Option<Citizen<'_>> {
        let session = self.session.as_ref()?;
        Some(Citizen {
            patient_id: session.data.patient_id.as_deref()?,
        })
    }

    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// Whether a form carries this session's CSRF token.
    pub fn csrf_ok(&self, form: &[(String, String)]) -> bool {
        self.session
            .as_ref()
            .is_some_and(|session| csrf::check(&session.data.csrf, form))
    }

    /// Sets (or, with `max_age` 0, deletes) the session cookie.
    pub fn set_session_cookie(&self, response: &mut Response, value: &str, max_age: i64) {
        self.cookies.add(response, COOKIE, value, max_age);
    }
}

impl Session {
    /// A new session record holding `data`; returns it with its cookie value.
    pub fn create(
        state: &AppState,
        data: SessionData,
        idle: i64,
        lifetime: i64,
    ) -> Option<Session> {
        let json = serde_json::to_string(&data).ok()?;
        match state
            .auth
            .sessions()
            .create(SessionKind::Portal, &json, idle, lifetime)
        {
            Ok(token) => Some(Session { token, data }),
            Err(e) => {
                tracing::error!(error = %e, "could not start a portal session");
                None
            }
        }
    }

    /// Ends a session (logout, a new login).
    pub fn end(state: &AppState, token: &str) -> Result<(), phr_auth::AuthError> {
        state.auth.sessions().end(token)
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
        let session = match cookies.read(&parts.headers, COOKIE) {
            Some(token) if token.len() <= 128 => {
                let token = token.to_owned();
                let auth = state.auth.clone();
                let found = crate::web::blocking(move || {
                    let data = auth
                        .sessions()
                        .get(SessionKind::Portal, &token, IDLE_TIMEOUT);
                    (token, data)
                })
                .await;
                match found {
                    Some((token, Ok(Some(json)))) => serde_json::from_str::<SessionData>(&json)
                        .ok()
                        .map(|data| Session { token, data }),
                    Some((_, Err(e))) => {
                        tracing::error!(error = %e, "could not read a portal session");
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
            session,
            cookies,
        })
    }
}
