//! The portal's browser session: a random cookie value (HttpOnly, SameSite=Lax, Secure and
//! `__Host-` behind TLS) whose digest keys a server-side record in the authorization
//! server's database. The record holds the CSRF token, the pseudonymous Patient id after
//! login, and during login the OAuth `state` and PKCE verifier. It ends after
//! [`IDLE_TIMEOUT`] seconds without use and [`LIFETIME`] seconds after login in any case.

use std::convert::Infallible;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use phr_auth::http::session::{page_lang, read_cookie};
use phr_auth::secrets::constant_time_eq;
use phr_auth::texts::Lang;
use serde::{Deserialize, Serialize};

use crate::AppState;

/// Seconds of inactivity after which the citizen must log in again.
pub const IDLE_TIMEOUT: i64 = 15 * 60;
/// Seconds a session lasts at most.
pub const LIFETIME: i64 = 12 * 60 * 60;
/// Seconds a started login may take (identity provider, terms).
pub const LOGIN_TIMEOUT: i64 = 10 * 60;

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
    pub lang_chosen: bool,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub session: Option<Session>,
    pub secure_cookies: bool,
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
        let Some(session) = &self.session else {
            return false;
        };
        let sent = form
            .iter()
            .find(|(k, _)| k == "csrf")
            .map(|(_, v)| v.as_str())
            .unwrap_or("");
        !session.data.csrf.is_empty()
            && constant_time_eq(sent.as_bytes(), session.data.csrf.as_bytes())
    }
}

pub fn cookie_name(secure: bool) -> &'static str {
    // The __Host- prefix pins the cookie to this host and path, over https only.
    if secure {
        "__Host-phr_portal"
    } else {
        "phr_portal"
    }
}

/// The `Set-Cookie` value of the session cookie; `max_age` 0 deletes it.
pub fn session_cookie(secure: bool, value: &str, max_age: i64) -> String {
    let flags = if secure { "; Secure" } else { "" };
    format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{flags}",
        cookie_name(secure)
    )
}

pub fn add_cookie(response: &mut Response, cookie: &str) {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
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
        match state.auth.create_browser_session(&json, idle, lifetime) {
            Ok(token) => Some(Session { token, data }),
            Err(e) => {
                tracing::error!(error = %e, "could not start a portal session");
                None
            }
        }
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
        let query_lang = query
            .iter()
            .find(|(k, _)| k == "lang")
            .map(|(_, v)| v.as_str());
        let lang_chosen = query_lang.and_then(Lang::parse).is_some();
        let lang = page_lang(query_lang, &parts.headers);
        let secure_cookies = state.auth.config().secure_cookies();
        let session = match read_cookie(&parts.headers, cookie_name(secure_cookies)) {
            Some(token) if token.len() <= 128 => {
                let token = token.to_owned();
                let auth = state.auth.clone();
                let found = tokio::task::spawn_blocking(move || {
                    let data = auth.browser_session(&token, IDLE_TIMEOUT);
                    (token, data)
                })
                .await;
                match found {
                    Ok((token, Ok(Some(json)))) => serde_json::from_str::<SessionData>(&json)
                        .ok()
                        .map(|data| Session { token, data }),
                    Ok((_, Err(e))) => {
                        tracing::error!(error = %e, "could not read a portal session");
                        None
                    }
                    _ => None,
                }
            }
            _ => None,
        };
        Ok(Ctx {
            lang,
            lang_chosen,
            path: parts.uri.path().to_owned(),
            query,
            session,
            secure_cookies,
        })
    }
}
