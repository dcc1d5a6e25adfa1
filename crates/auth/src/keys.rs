//! ES256 signing keys for access and ID tokens: generation (p256), persistence in the auth
//! database, rotation by age, and the public JWKS.
//!
//! The newest key signs; older keys keep verifying until every token they signed has
//! expired, then they leave the JWKS. Keys live in the database so that several server
//! processes sharing it sign and verify with the same set.

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicI64, Ordering};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::EncodePrivateKey;
use rusqlite::{Connection, params};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::error::{AuthError, Result};
use crate::secrets::random_bytes;

struct Loaded {
    signing_kid: String,
    signing: EncodingKey,
    signing_created_at: i64,
    verifying: HashMap<String, DecodingKey>,
    jwks: Vec<Value>,
}

/// The current key set, refreshed from the database after a rotation.
pub struct KeyRing {
    loaded: RwLock<Loaded>,
    /// When a token naming an unknown key last made this process re-read the key set
    /// (seconds).
    unknown_key_reload: AtomicI64,
    rotation_interval: i64,
    /// How long a retired key keeps verifying: the longest token lifetime.
    retention: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("malformed token")]
    Malformed,
    #[error("unknown signing key")]
    UnknownKey,
    #[error("bad signature")]
    BadSignature,
}

impl KeyRing {
    /// Loads the keys, making the first one (or a fresh one when the newest is older than
    /// `rotation_interval`).
    pub fn open(
        conn: &Connection,
        now: i64,
        rotation_interval: i64,
        retention: i64,
    ) -> Result<KeyRing> {
        let newest: Option<i64> = conn.query_row(
            "SELECT max(created_at) FROM signing_keys WHERE retired_at IS NULL",
            [],
            |r| r.get(0),
        )?;
        if newest.is_none_or(|created| now - created >= rotation_interval) {
            create_key(conn, now)?;
        }
        let loaded = load(conn, now, retention)?;
        Ok(KeyRing {
            loaded: RwLock::new(loaded),
            unknown_key_reload: AtomicI64::new(i64::MIN),
            rotation_interval,
            retention,
        })
    }

    /// Makes a new signing key now; the previous ones only verify from here on.
    pub fn rotate(&self, conn: &Connection, now: i64) -> Result<String> {
        let kid = create_key(conn, now)?;
        self.reload(conn, now)?;
        Ok(kid)
    }

    /// Rotates when the signing key is older than the rotation interval, and picks up keys
    /// another process made.
    pub fn rotate_if_due(&self, conn: &Connection, now: i64) -> Result<()> {
        let due = self
            .read()
            .is_some_and(|l| now - l.signing_created_at >= self.rotation_interval);
        if due {
            let newest: Option<i64> = conn.query_row(
                "SELECT max(created_at) FROM signing_keys WHERE retired_at IS NULL",
                [],
                |r| r.get(0),
            )?;
            if newest.is_none_or(|created| now - created >= self.rotation_interval) {
                create_key(conn, now)?;
            }
            self.reload(conn, now)?;
        }
        Ok(())
    }

    /// Re-reads the key set (after another process rotated).
    pub fn reload(&self, conn: &Connection, now: i64) -> Result<()> {
        let loaded = load(conn, now, self.retention)?;
        match self.loaded.write() {
            Ok(mut guard) => *guard = loaded,
            Err(poisoned) => *poisoned.into_inner() = loaded,
        }
        Ok(())
    }

    /// Re-reads the key set for a token whose key this process does not know: another
    /// process (`phr key rotate`, then `phr token`) may have made it. At most once a second,
    /// so tokens with made-up key ids cannot make every request read the database. Returns
    /// whether it re-read.
    pub fn reload_for_unknown_key(&self, conn: &Connection, now: i64) -> Result<bool> {
        let last = self.unknown_key_reload.load(Ordering::Relaxed);
        if last >= now
            || self
                .unknown_key_reload
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return Ok(false);
        }
        self.reload(conn, now)?;
        Ok(true)
    }

    fn read(&self) -> Option<std::sync::RwLockReadGuard<'_, Loaded>> {
        self.loaded.read().ok()
    }

    pub fn signing_kid(&self) -> String {
        self.read()
            .map(|l| l.signing_kid.clone())
            .unwrap_or_default()
    }

    /// Signs `claims` as an ES256 JWT with the current key's `kid`.
    pub fn sign<T: Serialize>(&self, claims: &T) -> Result<String> {
        let loaded = self
            .read()
            .ok_or_else(|| AuthError::Signing("key set lock poisoned".into()))?;
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(loaded.signing_kid.clone());
        jsonwebtoken::encode(&header, claims, &loaded.signing)
            .map_err(|e| AuthError::Signing(e.to_string()))
    }

    /// Checks the signature against the key named by `kid` and returns the claims. Time and
    /// audience checks are the caller's (it has the service clock).
    pub fn verify<T: DeserializeOwned>(&self, token: &str) -> Result<T, VerifyError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| VerifyError::Malformed)?;
        if header.alg != Algorithm::ES256 {
            return Err(VerifyError::BadSignature);
        }
        let kid = header.kid.ok_or(VerifyError::UnknownKey)?;
        let loaded = self.read().ok_or(VerifyError::UnknownKey)?;
        let key = loaded.verifying.get(&kid).ok_or(VerifyError::UnknownKey)?;
        let mut validation = Validation::new(Algorithm::ES256);
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        jsonwebtoken::decode::<T>(token, key, &validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature => VerifyError::BadSignature,
                _ => VerifyError::Malformed,
            })
    }

    /// The public keys as a JWK Set.
    pub fn jwks(&self) -> Value {
        let keys = self.read().map(|l| l.jwks.clone()).unwrap_or_default();
        json!({ "keys": keys })
    }
}

fn create_key(conn: &Connection, now: i64) -> Result<String> {
    let secret = loop {
        // A random 32-byte string is a valid P-256 scalar except with negligible probability.
        if let Ok(key) = p256::SecretKey::from_slice(&random_bytes::<32>()) {
            break key;
        }
    };
    let der = secret
        .to_pkcs8_der()
        .map_err(|e| AuthError::Signing(e.to_string()))?;
    let point = secret.public_key().to_encoded_point(false);
    let (Some(x), Some(y)) = (point.x(), point.y()) else {
        return Err(AuthError::Signing(
            "public key has no affine coordinates".into(),
        ));
    };
    let x = URL_SAFE_NO_PAD.encode(x);
    let y = URL_SAFE_NO_PAD.encode(y);
    let kid = thumbprint(&x, &y);
    conn.execute(
        "INSERT INTO signing_keys (kid, private_der, x, y, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![kid, der.as_bytes(), x, y, now],
    )?;
    conn.execute(
        "UPDATE signing_keys SET retired_at = ?1 WHERE retired_at IS NULL AND kid <> ?2",
        params![now, kid],
    )?;
    Ok(kid)
}

/// RFC 7638 JWK thumbprint, used as `kid`.
fn thumbprint(x: &str, y: &str) -> String {
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

fn load(conn: &Connection, now: i64, retention: i64) -> Result<Loaded> {
    let mut stmt = conn.prepare(
        "SELECT kid, private_der, x, y, created_at, retired_at FROM signing_keys
         WHERE retired_at IS NULL OR retired_at > ?1 ORDER BY created_at DESC, rowid DESC",
    )?;
    let rows = stmt.query_map([now - retention], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, Vec<u8>>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, i64>(4)?,
            r.get::<_, Option<i64>>(5)?,
        ))
    })?;
    let mut signing = None;
    let mut verifying = HashMap::new();
    let mut jwks = Vec::new();
    for row in rows {
        let (kid, der, x, y, created_at, retired_at) = row?;
        if retired_at.is_none() && signing.is_none() {
            signing = Some((kid.clone(), EncodingKey::from_ec_der(&der), created_at));
        }
        let decoding = DecodingKey::from_ec_components(&x, &y)
            .map_err(|e| AuthError::Signing(e.to_string()))?;
        verifying.insert(kid.clone(), decoding);
        jwks.push(json!({"kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": kid, "use": "sig", "alg": "ES256"}));
    }
    let (signing_kid, signing, signing_created_at) =
        signing.ok_or_else(|| AuthError::Signing("no active signing key".into()))?;
    Ok(Loaded {
        signing_kid,
        signing,
        signing_created_at,
        verifying,
        jwks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn conn() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::db::migrate_for_tests(&mut conn);
        conn
    }

    #[test]
    fn signed_token_verifies_and_names_its_key() {
        let conn = conn();
        let ring = KeyRing::open(&conn, 1000, 100, 50).unwrap();
        let token = ring.sign(&json!({"sub": "x"})).unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.alg, Algorithm::ES256);
        assert_eq!(header.kid.as_deref(), Some(ring.signing_kid().as_str()));
        let claims: Value = ring.verify(&token).unwrap();
        assert_eq!(claims["sub"], "x");
    }

    #[test]
    fn tampered_token_fails() {
        let conn = conn();
        let ring = KeyRing::open(&conn, 1000, 100, 50).unwrap();
        let token = ring.sign(&json!({"sub": "x"})).unwrap();
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        parts[1] = URL_SAFE_NO_PAD.encode(br#"{"sub":"y"}"#);
        assert_eq!(
            ring.verify::<Value>(&parts.join(".")),
            Err(VerifyError::BadSignature)
        );
        assert_eq!(
            ring.verify::<Value>("not-a-jwt"),
            Err(VerifyError::Malformed)
        );
    }

    #[test]
    fn rotation_keeps_old_key_verifying_until_retention_ends() {
        let conn = conn();
        let ring = KeyRing::open(&conn, 1000, 100, 50).unwrap();
        let old_kid = ring.signing_kid();
        let old_token = ring.sign(&json!({"n": 1})).unwrap();

        ring.rotate_if_due(&conn, 1099).unwrap();
        assert_eq!(ring.signing_kid(), old_kid, "not due yet");
        ring.rotate_if_due(&conn, 1100).unwrap();
        let new_kid = ring.signing_kid();
        assert_ne!(new_kid, old_kid);
        assert_eq!(ring.jwks()["keys"].as_array().unwrap().len(), 2);
        assert!(ring.verify::<Value>(&old_token).is_ok());
        let new_token = ring.sign(&json!({"n": 2})).unwrap();
        assert_eq!(
            jsonwebtoken::decode_header(&new_token)
                .unwrap()
                .kid
                .as_deref(),
            Some(new_kid.as_str())
        );

        // The old key was retired at 1100; 50 s later it is gone.
        ring.reload(&conn, 1151).unwrap();
        assert_eq!(
            ring.verify::<Value>(&old_token),
            Err(VerifyError::UnknownKey)
        );
        assert!(ring.verify::<Value>(&new_token).is_ok());
        assert_eq!(ring.jwks()["keys"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn reopening_reuses_the_stored_key() {
        let conn = conn();
        let first = KeyRing::open(&conn, 1000, 100, 50).unwrap().signing_kid();
        let second = KeyRing::open(&conn, 1010, 100, 50).unwrap().signing_kid();
        assert_eq!(first, second);
    }
}
