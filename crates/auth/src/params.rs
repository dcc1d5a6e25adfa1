//! Form and query parameters of the OAuth endpoints, with the RFC 6749 §3.1 rule that a
//! parameter must not appear more than once and that empty values count as absent.

use crate::error::OAuthError;

#[derive(Debug, Clone, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn new(pairs: Vec<(String, String)>) -> Self {
        Params(pairs)
    }

    /// Parses `application/x-www-form-urlencoded` text.
    pub fn parse(text: &str) -> Self {
        Params(
            url::form_urlencoded::parse(text.as_bytes())
                .into_owned()
                .collect(),
        )
    }

    /// The value, `None` when absent or empty; an error when repeated.
    pub fn get(&self, name: &str) -> Result<Option<&str>, OAuthError> {
        let mut values = self.0.iter().filter(|(k, v)| k == name && !v.is_empty());
        let first = values.next().map(|(_, v)| v.as_str());
        if values.next().is_some() {
            return Err(OAuthError::invalid_request(format!(
                "parameter {name} appears more than once"
            )));
        }
        Ok(first)
    }

    pub fn required(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name)?
            .ok_or_else(|| OAuthError::invalid_request(format!("parameter {name} is required")))
    }

    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_parameter_is_an_error_and_empty_is_absent() {
        let params = Params::parse("a=1&a=2&b=&c=x%20y");
        assert!(params.get("a").is_err());
        assert_eq!(params.get("b").unwrap(), None);
        assert_eq!(params.get("c").unwrap(), Some("x y"));
        assert_eq!(params.required("d").unwrap_err().code, "invalid_request");
    }
}
