//! The browser pages' cookies: `HttpOnly`, `SameSite=Lax`, `Path=/`, and behind TLS (an https
//! public URL) `Secure` with the `__Host-` name prefix, which pins a cookie to this host and
//! path. Nothing sensitive goes in a cookie: session values are random and only their digest
//! is stored.

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;

/// The cookie rules of one server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cookies {
    secure: bool,
}

impl Cookies {
    /// Secure cookies when the public URL is https.
    pub fn for_public_url(url: &str) -> Cookies {
        Cookies {
            secure: url.starts_with("https://"),
        }
    }

    /// The name a cookie has on the wire.
    pub fn name(&self, base: &str) -> String {
        if self.secure {
            format!("__Host-{base}")
        } else {
            base.to_owned()
        }
    }

    /// The `Set-Cookie` value of cookie `base`; `max_age` 0 deletes it.
    pub fn set(&self, base: &str, value: &str, max_age: i64) -> String {
        let secure = if self.secure { "; Secure" } else { "" };
        format!(
            "{}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}",
            self.name(base)
        )
    }

    /// Adds cookie `base` to a response.
    pub fn add(&self, response: &mut Response, base: &str, value: &str, max_age: i64) {
        if let Ok(value) = HeaderValue::from_str(&self.set(base, value, max_age)) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }

    /// The value of cookie `base` in a request, if sent.
    pub fn read<'a>(&self, headers: &'a HeaderMap, base: &str) -> Option<&'a str> {
        let name = self.name(base);
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behind_tls_cookies_are_secure_and_host_bound() {
        let tls = Cookies::for_public_url("https://phr.example.fi");
        assert_eq!(
            tls.set("phr_portal", "v", 60),
            "__Host-phr_portal=v; Path=/; HttpOnly; SameSite=Lax; Max-Age=60; Secure"
        );
        let plain = Cookies::for_public_url("http://127.0.0.1:8080");
        assert_eq!(
            plain.set("phr_portal", "v", 0),
            "phr_portal=v; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"
        );
    }

    #[test]
    fn cookies_are_read_by_their_wire_name() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; __Host-phr_auth=s; phr_auth=plain"),
        );
        assert_eq!(
            Cookies::for_public_url("https://x").read(&headers, "phr_auth"),
            Some("s")
        );
        assert_eq!(
            Cookies::for_public_url("http://x").read(&headers, "phr_auth"),
            Some("plain")
        );
        assert_eq!(
            Cookies::for_public_url("http://x").read(&headers, "b"),
            None
        );
    }
}
