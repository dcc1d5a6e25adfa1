//! The one CSRF check of every form the server's pages post: the form's `csrf` field must
//! equal the token the server expects (kept in the session, or for the sessionless app
//! registration page in a cookie), compared in constant time. A form that fails it changes
//! nothing.

use phr_auth::secrets::{constant_time_eq, random_token};

/// The name of the hidden form field.
pub const FIELD: &str = "csrf";

/// A new token for a session or a page.
pub fn new_token() -> String {
    random_token()
}

/// Whether `form` carries the `expected` token (never true for an empty expectation).
pub fn check(expected: &str, form: &[(String, String)]) -> bool {
    let sent = form
        .iter()
        .find(|(k, _)| k == FIELD)
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    !expected.is_empty() && constant_time_eq(sent.as_bytes(), expected.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn only_the_expected_token_passes() {
        let token = new_token();
        assert!(check(&token, &form(&[("a", "b"), ("csrf", &token)])));
        assert!(!check(&token, &form(&[("csrf", "other")])));
        assert!(!check(&token, &form(&[])));
        assert!(
            !check("", &form(&[("csrf", "")])),
            "no expectation, no pass"
        );
    }
}
