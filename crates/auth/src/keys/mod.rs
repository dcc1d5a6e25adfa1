//! ES256 signing keys for access and ID tokens: generation (p256), persistence, rotation by
//! age, and the public JWKS.
//!
//! The newest key signs; older keys keep verifying until every token they signed has
//! expired, then they leave the JWKS. Keys live in the database so that several server
//! processes sharing it sign and verify with the same set.
//!
//! Owns the `signing_keys` table through [`KeyStore`] (SQLite in `sqlite.rs`, PostgreSQL in `postgres.rs`). Private keys
//! never leave this module except as stored PKCS#8 bytes.

pub(crate) mod postgres;
mod sqlite;

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::EncodePrivateKey;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::error::{AuthError, Result};
use crate::secrets::random_bytes;

pub(crate) use postgres::PostgresKeyStore;
pub(crate) use sqlite::SqliteKeyStore;

/// A signing key as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredKey {
    pub kid: String,
    /// PKCS#8 DER of the private key.
    pub private_der: Vec<u8>,
    /// Public point, base64url.
    pub x: String,
    pub y: String,
    pub created_at: i64,
    pub retired_at: Option<i64>,
}

impl std::fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredKey")
            .field("kid", &self.kid)
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .finish_non_exhaustive()
    }
}

/// Where signing keys are kept.
pub trait KeyStore: Send + Sync {
    /// When the newest key still signing was made.
    fn newest_signing_created_at(&self) -> Result<Option<i64>>;
    /// Stores a new key and retires every other signing key at `now`.
    fn add_and_retire_others(&self, key: &StoredKey, now: i64) -> Result<()>;
    /// Keys still signing or retired after `retired_after`, newest first.
    fn usable(&self, retired_after: i64) -> Result<Vec<StoredKey>>;
}

struct Loaded {
    signing_kid: String,
    signing: EncodingKey,
    signing_created_at: i64,
    verifying: HashMap<String, DecodingKey>,
    jwks: Vec<Value>,
}

/// The current key set, refreshed from the database after a rotation.
pub struct KeyRing {
    store: Arc<dyn KeyStore>,
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
        store: Arc<dyn KeyStore>,
        now: i64,
        rotation_interval: i64,
        retention: i64,
    ) -> Result<KeyRing> {
        let newest = store.newest_signing_created_at()?;
        if newest.is_none_or(|created| now - created >= rotation_interval) {
            create_key(store.as_ref(), now)?;
        }
        let loaded = load(store.as_ref(), now, retention)?;
        Ok(KeyRing {
            store,
            loaded: RwLock::new(loaded),
            unknown_key_reload: AtomicI64::new(i64::MIN),
            rotation_interval,
            retention,
        })
    }

    /// Makes a new signing key now; the previous ones only verify from here on.
    pub fn rotate(&self, now: i64) -> Result<String> {
        let kid = create_key(self.store.as_ref(), now)?;
        self.reload(now)?;
        Ok(kid)
    }

    /// Rotates when the signing key is older than the rotation interval, and picks up keys
    /// another process made. `claim(created_at of the key to replace)` decides which of
    /// several nodes sharing the database makes the new key (the others pick it up).
    pub fn rotate_if_due(&self, now: i64, claim: &dyn Fn(i64) -> Result<bool>) -> Result<()> {
        let due = self
            .read()
            .is_some_and(|l| now - l.signing_created_at >= self.rotation_interval);
        if due {
            let newest = self.store.newest_signing_created_at()?;
            let stale = newest.is_none_or(|created| now - created >= self.rotation_interval);
            if stale && claim(newest.unwrap_or(0))? {
                create_key(self.store.as_ref(), now)?;
            }
            self.reload(now)?;
        }
        Ok(())
    }

    /// Re-reads the key set (after another process rotated).
    pub fn reload(&self, now: i64) -> Result<()> {
        let loaded = load(self.store.as_ref(), now, self.retention)?;
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
    pub fn reload_for_unknown_key(&self, now: i64) -> Result<bool> {
        let last = self.unknown_key_reload.load(Ordering::Relaxed);
        if last >= now
            || self
                .unknown_key_reload
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return Ok(false);
        }
        self.reload(now)?;
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

fn create_key(store: &dyn KeyStore, now: i64) -> Result<String> {
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
    store.add_and_retire_others(
        &StoredKey {
            kid: kid.clone(),
            private_der: der.as_bytes().to_vec(),
            x,
            y,
            created_at: now,
            retired_at: None,
        },
        now,
    )?;
    Ok(kid)
}

/// RFC 7638 JWK thumbprint, used as `kid`.
fn thumbprint(x: &str, y: &str) -> String {
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

fn load(store: &dyn KeyStore, now: i64, retention: i64) -> Result<Loaded> {
    let mut signing = None;
    let mut verifying = HashMap::new();
    let mut jwks = Vec::new();
    for key in store.usable(now - retention)? {
        let StoredKey {
            kid,
            private_der,
            x,
            y,
            created_at,
            retired_at,
        } = key;
        if retired_at.is_none() && signing.is_none() {
            signing = Some((
                kid.clone(),
                EncodingKey::from_ec_der(&private_der),
                created_at,
            ));
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

    fn store() -> Arc<dyn KeyStore> {
        Arc::new(SqliteKeyStore::new(crate::sqlite::Sqlite::in_memory()))
    }

    #[test]
    fn signed_token_verifies_and_names_its_key() {
        let ring = KeyRing::open(store(), 1000, 100, 50).unwrap();
        let token = ring.sign(&json!({"sub": "x"})).unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.alg, Algorithm::ES256);
        assert_eq!(header.kid.as_deref(), Some(ring.signing_kid().as_str()));
        let claims: Value = ring.verify(&token).unwrap();
        assert_eq!(claims["sub"], "x");
    }

    #[test]
    fn tampered_token_fails() {
        let ring = KeyRing::open(store(), 1000, 100, 50).unwrap();
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
        let ring = KeyRing::open(store(), 1000, 100, 50).unwrap();
        let old_kid = ring.signing_kid();
        let old_token = ring.sign(&json!({"n": 1})).unwrap();

        ring.rotate_if_due(1099, &|_| Ok(true)).unwrap();
        assert_eq!(ring.signing_kid(), old_kid, "not due yet");
        ring.rotate_if_due(1100, &|_| Ok(true)).unwrap();
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
        ring.reload(1151).unwrap();
        assert_eq!(
            ring.verify::<Value>(&old_token),
            Err(VerifyError::UnknownKey)
        );
        assert!(ring.verify::<Value>(&new_token).is_ok());
        assert_eq!(ring.jwks()["keys"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn a_node_that_does_not_win_the_rotation_picks_up_the_new_key() {
        let store = store();
        let a = KeyRing::open(store.clone(), 1000, 100, 50).unwrap();
        let b = KeyRing::open(store, 1000, 100, 50).unwrap();
        let first = a.signing_kid();
        assert_eq!(b.signing_kid(), first);
        let claimed = std::sync::Mutex::new(Vec::new());
        let claim = |slot: i64| {
            let mut seen = claimed.lock().unwrap();
            let won = !seen.contains(&slot);
            seen.push(slot);
            Ok(won)
        };
        a.rotate_if_due(1100, &claim).unwrap();
        b.rotate_if_due(1100, &claim).unwrap();
        assert_eq!(
            *claimed.lock().unwrap(),
            [1000],
            "b found the new key without asking"
        );
        assert_ne!(a.signing_kid(), first);
        assert_eq!(
            a.signing_kid(),
            b.signing_kid(),
            "one new key, used by both"
        );
        assert_eq!(b.jwks()["keys"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn reopening_reuses_the_stored_key() {
        let store = store();
        let first = KeyRing::open(store.clone(), 1000, 100, 50)
            .unwrap()
            .signing_kid();
        let second = KeyRing::open(store, 1010, 100, 50).unwrap().signing_kid();
        assert_eq!(first, second);
    }
}
