//! The one security-header layer around the server's browser pages (OAuth pages and portal):
//! a Content-Security-Policy with no script at all, styles and images only from the server,
//! forms only to the server (plus, on the consent page, the client's redirect origin:
//! browsers apply `form-action` to the redirect that follows a form post), no framing, no
//! MIME sniffing, no referrer, and no caching unless a response says otherwise (stylesheets).

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

/// An extra origin the forms of a page may lead to, set as a response extension by the
/// handler (the consent page: the client's redirect URI).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormTarget(pub String);

/// The policy of every page; [`csp`] with a form target widens `form-action`.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The Content-Security-Policy for a page whose forms may also lead to `form_target`.
pub fn csp(form_target: Option<&str>) -> String {
    match form_target.and_then(origin_of) {
        Some(origin) => CSP.replace(
            "form-action 'self'",
            &format!("form-action 'self' {origin}"),
        ),
        None => CSP.to_owned(),
    }
}

/// The `scheme://host[:port]` of a URL, for CSP source lists; `scheme:` for private-use
/// schemes (native apps), which is how CSP source expressions name them.
fn origin_of(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    match parsed.scheme() {
        "http" | "https" => Some(parsed.origin().ascii_serialization()),
        scheme => Some(format!("{scheme}:")),
    }
}

/// Sets the security headers on a response.
pub fn apply(headers: &mut HeaderMap, form_target: Option<&str>) {
    if let Ok(value) = HeaderValue::from_str(&csp(form_target)) {
        headers.insert(header::CONTENT_SECURITY_POLICY, value);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    }
}

/// The layer: `router.layer(axum::middleware::from_fn(web::headers::layer))`.
pub async fn layer(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let target = response
        .extensions()
        .get::<FormTarget>()
        .map(|t| t.0.clone());
    apply(response.headers_mut(), target.as_deref());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_action_widens_only_to_the_target_origin() {
        assert_eq!(csp(None), CSP);
        let widened = csp(Some("https://app.example.fi/cb?x=1"));
        assert!(
            widened.contains("form-action 'self' https://app.example.fi;"),
            "{widened}"
        );
        assert!(csp(Some("fi.example.app:/cb")).contains("form-action 'self' fi.example.app:;"));
        assert_eq!(csp(Some("not a url")), CSP);
    }

    #[test]
    fn a_response_keeps_its_own_cache_policy() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=60"),
        );
        apply(&mut headers, None);
        assert_eq!(headers[header::CACHE_CONTROL], "public, max-age=60");
        assert_eq!(headers[header::REFERRER_POLICY], "no-referrer");
        let mut headers = HeaderMap::new();
        apply(&mut headers, None);
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    }
}
