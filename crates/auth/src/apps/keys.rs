//! An application's public keys for `private_key_jwt` client authentication, as the registry
//! takes them (registration, `phr app register`, the developer console): an inline JWKS or a
//! `jwks_uri`, never both.
//!
//! Owns the rules of what may be registered. Never accepts private key material (a private
//! or symmetric key sent to the server is a leaked key) and never fetches a `jwks_uri` (that
//! is `flows::client_auth`'s, at authentication).

use serde_json::Value;

use super::{ClientType, parse_jwks};
use crate::error::AuthError;

/// JWK members that hold private or symmetric key material: RSA (`d`, `p`, `q`, `dp`, `dq`,
/// `qi`, `oth`), EC and OKP (`d`), symmetric (`k`) (RFC 7518 §6.2.2, §6.3.2, §6.4.1; RFC 8037).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Why keys are refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeysError {
    #[error("give either a JWKS or a jwks_uri, not both")]
    Both,
    #[error("private_key_jwt clients must register a JWKS or a jwks_uri")]
    Missing,
    /// Some key (or anything else in the document) holds `member`.
    #[error(
        "the JWKS holds private key material (\"{member}\"): register public keys only, and replace a private key that has been sent anywhere"
    )]
    PrivateKey { member: &'static str },
    /// Not a JWK Set with keys ([`parse_jwks`]'s reason).
    #[error("{0}")]
    Invalid(String),
    /// Key `position` (from 1) is no key a signature can be checked with.
    #[error("key {position} of the JWKS is not a usable public key (an RSA or EC key)")]
    Unusable { position: usize },
    #[error(
        "jwks_uri must be an https URL without user name, password or fragment (plain http only on loopback)"
    )]
    Uri,
}

impl From<KeysError> for AuthError {
    fn from(error: KeysError) -> Self {
        AuthError::Invalid(error.to_string())
    }
}

/// Checks the keys of a `client_type` client: at most one of an inline JWKS and a
/// `jwks_uri`, and a `private_key_jwt` client has one.
pub fn check_keys(
    client_type: ClientType,
    jwks: Option<&Value>,
    jwks_uri: Option<&str>,
) -> Result<(), KeysError> {
    match (jwks, jwks_uri) {
        (Some(_), Some(_)) => Err(KeysError::Both),
        (Some(jwks), None) => check_jwks(jwks),
        (None, Some(uri)) => check_jwks_uri(uri),
        (None, None) if client_type == ClientType::PrivateKeyJwt => Err(KeysError::Missing),
        (None, None) => Ok(()),
    }
}

/// An inline key set: a JWK Set of at least one key, each a public key a client
/// assertion's signature can be checked with.
fn check_jwks(jwks: &Value) -> Result<(), KeysError> {
    if let Some(member) = private_member(jwks) {
        return Err(KeysError::PrivateKey { member });
    }
    let set = parse_jwks(jwks).map_err(KeysError::Invalid)?;
    match set
        .keys
        .iter()
        .position(|key| jsonwebtoken::DecodingKey::from_jwk(key).is_err())
    {
        Some(i) => Err(KeysError::Unusable { position: i + 1 }),
        None => Ok(()),
    }
}

/// A member holding private key material anywhere in the document: in a key of the set,
/// and as well in a lone JWK or a list of them pasted instead of a set (refused as not a
/// set, but named for what they are).
fn private_member(value: &Value) -> Option<&'static str> {
    match value {
        Value::Object(members) => PRIVATE_MEMBERS
            .into_iter()
            .find(|member| members.contains_key(*member))
            .or_else(|| members.values().find_map(private_member)),
        Value::Array(items) => items.iter().find_map(private_member),
        _ => None,
    }
}

/// Whether pasted text, JSON or not, may hold private key material: a PEM private key, or a
/// private JWK member's name in quotes (text that does not parse can still hold a key). A
/// page that refuses such text must not show it again.
pub fn looks_private(text: &str) -> bool {
    is_pem_private_key(text)
        || PRIVATE_MEMBERS
            .iter()
            .any(|member| text.contains(&format!("\"{member}\"")))
}

/// Whether pasted text holds a PEM private key (no JSON, but a key all the same).
pub fn is_pem_private_key(text: &str) -> bool {
    text.contains("-----BEGIN") && text.contains("PRIVATE KEY")
}

/// Where the keys are published: https (plain http only on loopback, for local tests),
/// with a host, and no credentials or fragment.
fn check_jwks_uri(uri: &str) -> Result<(), KeysError> {
    let parsed = url::Url::parse(uri).map_err(|_| KeysError::Uri)?;
    let scheme_ok = match parsed.scheme() {
        "https" => true,
        "http" => crate::config::is_loopback_url(uri),
        _ => false,
    };
    let ok = scheme_ok
        && parsed.host_str().is_some_and(|h| !h.is_empty())
        && parsed.username().is_empty()
        && parsed.password().is_none()
        && parsed.fragment().is_none();
    if ok { Ok(()) } else { Err(KeysError::Uri) }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn public_ec() -> Value {
        json!({"kty": "EC", "crv": "P-256", "kid": "k1",
               "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
               "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"})
    }

    #[test]
    fn a_set_of_public_keys_is_accepted() {
        assert_eq!(check_jwks(&json!({"keys": [public_ec()]})), Ok(()));
        let rsa = json!({"kty": "RSA", "kid": "r1", "e": "AQAB",
                         "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"});
        assert_eq!(check_jwks(&json!({"keys": [public_ec(), rsa]})), Ok(()));
    }

    #[test]
    fn private_key_material_is_refused_in_any_key() {
        for member in PRIVATE_MEMBERS {
            let mut private = public_ec();
            private[member] = json!("c2VjcmV0");
            assert_eq!(
                check_jwks(&json!({"keys": [public_ec(), private]})),
                Err(KeysError::PrivateKey { member }),
                "{member}"
            );
        }
        let symmetric = json!({"kty": "oct", "k": "c2VjcmV0"});
        assert_eq!(
            check_jwks(&json!({ "keys": [symmetric] })),
            Err(KeysError::PrivateKey { member: "k" })
        );
        // A lone private JWK, or a list of them, pasted instead of a set is named for what
        // it is.
        let mut lone = public_ec();
        lone["d"] = json!("c2VjcmV0");
        for pasted in [lone.clone(), json!([public_ec(), lone.clone()])] {
            assert_eq!(
                check_jwks(&pasted),
                Err(KeysError::PrivateKey { member: "d" }),
                "{pasted}"
            );
        }
        let error = check_keys(ClientType::PrivateKeyJwt, Some(&lone), None).unwrap_err();
        assert!(
            error.to_string().contains("private key material"),
            "{error}"
        );
    }

    #[test]
    fn a_set_without_usable_keys_or_that_is_no_set_is_refused() {
        for bad in [
            json!({"keys": []}),
            json!({"keys": "none"}),
            json!([public_ec()]),
            public_ec(),
            json!("text"),
        ] {
            assert!(
                matches!(check_jwks(&bad), Err(KeysError::Invalid(_))),
                "{bad}"
            );
        }
        assert_eq!(
            check_jwks(&json!({"keys": [public_ec(), {"kty": "EC"}]})),
            Err(KeysError::Unusable { position: 2 })
        );
    }

    #[test]
    fn pasted_text_with_private_key_material_is_recognised_even_when_it_does_not_parse() {
        let pem = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEI\n-----END EC PRIVATE KEY-----";
        let broken = r#"{"keys": [{"kty": "EC", "d": "c2VjcmV0", }"#;
        assert!(looks_private(pem) && looks_private(broken));
        let public = json!({"keys": [public_ec()]}).to_string();
        assert!(!looks_private(&public) && !looks_private("{\"keys\": ["));
        assert!(!looks_private("-----BEGIN PUBLIC KEY-----"));
    }

    #[test]
    fn a_jwks_uri_is_https_or_loopback_http() {
        for good in [
            "https://keys.example.fi/jwks.json",
            "http://127.0.0.1:8080/jwks",
            "http://localhost/jwks",
        ] {
            assert_eq!(check_jwks_uri(good), Ok(()), "{good}");
        }
        for bad in [
            "http://keys.example.fi/jwks.json",
            "https://user:pass@keys.example.fi/jwks",
            "https://keys.example.fi/jwks#k1",
            "file:///etc/keys.json",
            "keys.example.fi/jwks",
            "",
        ] {
            assert_eq!(check_jwks_uri(bad), Err(KeysError::Uri), "{bad}");
        }
    }

    #[test]
    fn a_client_has_one_place_for_its_keys_and_private_key_jwt_needs_one() {
        let jwks = json!({"keys": [public_ec()]});
        let uri = "https://keys.example.fi/jwks.json";
        assert_eq!(
            check_keys(ClientType::PrivateKeyJwt, Some(&jwks), Some(uri)),
            Err(KeysError::Both)
        );
        assert_eq!(
            check_keys(ClientType::PrivateKeyJwt, None, None),
            Err(KeysError::Missing)
        );
        assert_eq!(check_keys(ClientType::Confidential, None, None), Ok(()));
        assert_eq!(check_keys(ClientType::Public, Some(&jwks), None), Ok(()));
        assert_eq!(
            check_keys(ClientType::PrivateKeyJwt, None, Some(uri)),
            Ok(())
        );
    }
}
