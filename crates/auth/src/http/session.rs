//! Browser sessions of the login and consent pages: a random cookie value whose digest keys
//! a server-side record (language, CSRF token, the pending authorization request, who has
//! logged in). Nothing sensitive is in the cookie itself.

use axum::http::HeaderMap;
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::citizens::PendingCitizen;
use crate::error::{AuthError, Result};
use crate::oidc::UpstreamLogin;
use crate::secrets::{digest, random_token};
use crate::service::AuthService;
use crate::texts::Lang;
use crate::tokens::AuthorizeRequest;

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct SessionData {
    pub csrf: String,
    pub request: Option<AuthorizeRequest>,
    pub patient_id: Option<String>,
    pub authenticated_at: Option<i64>,
    pub pending: Option<PendingCitizen>,
    pub upstream: Option<UpstreamLogin>,
}

pub struct Session {
    pub id: String,
    pub data: SessionData,
}

pub fn cookie_name(service: &AuthService) -> &'static str {
    // The __Host- prefix pins the cookie to this host and path, over https only.
    if service.config().secure_cookies() {
        "__Host-phr_auth"
    } else {
        "phr_auth"
    }
}

pub fn read_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

pub fn set_cookie_value(service: &AuthService, name: &str, value: &str, max_age: i64) -> String {
    let secure = if service.config().secure_cookies() {
        "; Secure"
    } else {
        ""
    };
    format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}")
}

impl AuthService {
    pub(crate) fn load_session(&self, headers: &HeaderMap) -> Result<Option<Session>> {
        let Some(id) = read_cookie(headers, cookie_name(self)) else {
            return Ok(None);
        };
        let now = self.now();
        let data: Option<String> = self
            .db()
            .query_row(
                "SELECT data FROM sessions WHERE session_digest = ?1 AND expires_at > ?2",
                params![digest(id), now],
                |r| r.get(0),
            )
            .optional()?;
        Ok(data
            .and_then(|d| serde_json::from_str(&d).ok())
            .map(|data| Session {
                id: id.to_owned(),
                data,
            }))
    }

    pub(crate) fn new_session(&self) -> Session {
        Session {
            id: random_token(),
            data: SessionData {
                csrf: random_token(),
                ..SessionData::default()
            },
        }
    }

    pub(crate) fn save_session(&self, session: &Session) -> Result<()> {
        let data =
            serde_json::to_string(&session.data).map_err(|e| AuthError::Invalid(e.to_string()))?;
        let expires = self.now() + self.config().session_lifetime;
        self.db().execute(
            "INSERT INTO sessions (session_digest, data, expires_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (session_digest) DO UPDATE SET data = excluded.data, expires_at = excluded.expires_at",
            params![digest(&session.id), data, expires],
        )?;
        Ok(())
    }

    pub(crate) fn end_session(&self, session: &Session) -> Result<()> {
        self.db().execute(
            "DELETE FROM sessions WHERE session_digest = ?1",
            [digest(&session.id)],
        )?;
        Ok(())
    }
}

/// The page language: `?lang=`, then the `phr_lang` cookie, then `Accept-Language`, then
/// Finnish.
pub fn page_lang(query_lang: Option<&str>, headers: &HeaderMap) -> Lang {
    query_lang
        .and_then(Lang::parse)
        .or_else(|| read_cookie(headers, "phr_lang").and_then(Lang::parse))
        .or_else(|| {
            headers
                .get(axum::http::header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok())
                .and_then(Lang::from_accept_language)
        })
        .unwrap_or_default()
}
