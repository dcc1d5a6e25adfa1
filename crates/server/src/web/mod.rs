//! What the server's browser pages share — the OAuth login, terms, consent and registration
//! pages and the citizen portal: cookies ([`cookies`]), the one CSRF check ([`csrf`]), the one
//! security-header layer ([`headers`]), page language selection and the data-content names
//! ([`lang`]), the parts of every page's frame ([`chrome`]), and the rule that blocking work
//! runs off the async workers ([`blocking`]).
//!
//! Owns no page and no route; never decides who may do what (the auth domain does).

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod chrome;
pub mod cookies;
pub mod cors;
pub mod csrf;
pub mod headers;
pub mod lang;

pub use cookies::Cookies;
pub use lang::{
    Lang, PageLang, ScopeItem, category_name, resource_name, scope_items, scope_rights,
};

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Runs blocking work (storage, the auth domain) on the blocking pool, never on an async
/// worker. `None` when the work panicked (already logged).
pub async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    match tokio::task::spawn_blocking(work).await {
        Ok(value) => Some(value),
        Err(e) => {
            tracing::error!(error = %e, "blocking work failed");
            None
        }
    }
}

/// An HTML page. The security headers come from [`headers::layer`] around the router.
pub fn html(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

/// 303 See Other to `location` (after a form post the browser follows with GET).
pub fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// A static stylesheet, cached for an hour.
pub fn stylesheet(css: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        css,
    )
        .into_response()
}
