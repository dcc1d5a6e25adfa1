//! Page cursors: opaque, tamper-proof strings that pin a page request to a snapshot.
//!
//! A cursor carries the snapshot sequence number, the position (sort-key values and the
//! version seq of the row it continues from), the direction, the total from the first page
//! and when it was issued; it is bound to its query by a fingerprint and signed with
//! HMAC-SHA256 under a key stored in the database. No result set is kept on the server.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rusqlite::types::Value;
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

const VERSION: u8 = 1;
const TAG_LEN: usize = 16;

#[derive(Debug, Clone, PartialEq)]
pub enum Direction {
    /// The first page.
    Start,
    /// Rows after `keys` in sort order.
    After,
    /// Rows before `keys` in sort order (a `previous` link).
    Before,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Cursor {
    pub fingerprint: [u8; 16],
    pub snapshot: i64,
    pub issued: i64,
    pub direction: Direction,
    /// Sort-key values, the version seq last.
    pub keys: Vec<Value>,
    pub total: Option<u64>,
}

/// A hash of whatever identifies the query a cursor belongs to.
pub fn fingerprint(text: &str) -> [u8; 16] {
    let digest = Sha256::digest(text.as_bytes());
    let mut out = [0u8; 16];
    for (o, d) in out.iter_mut().zip(digest.iter()) {
        *o = *d;
    }
    out
}

pub fn encode(cursor: &Cursor, key: &[u8]) -> String {
    let mut out = vec![VERSION];
    out.extend_from_slice(&cursor.fingerprint);
    out.extend_from_slice(&cursor.snapshot.to_le_bytes());
    out.extend_from_slice(&cursor.issued.to_le_bytes());
    out.push(match cursor.direction {
        Direction::Start => 0,
        Direction::After => 1,
        Direction::Before => 2,
    });
    match cursor.total {
        None => out.push(0),
        Some(t) => {
            out.push(1);
            out.extend_from_slice(&t.to_le_bytes());
        }
    }
    out.push(cursor.keys.len() as u8);
    for v in &cursor.keys {
        match v {
            Value::Null => out.push(0),
            Value::Integer(i) => {
                out.push(1);
                out.extend_from_slice(&i.to_le_bytes());
            }
            Value::Real(f) => {
                out.push(2);
                out.extend_from_slice(&f.to_le_bytes());
            }
            Value::Text(s) => {
                out.push(3);
                out.extend_from_slice(&(s.len() as u32).to_le_bytes());
                out.extend_from_slice(s.as_bytes());
            }
            Value::Blob(b) => {
                out.push(4);
                out.extend_from_slice(&(b.len() as u32).to_le_bytes());
                out.extend_from_slice(b);
            }
        }
    }
    let tag = sign(&out, key);
    out.extend(tag.iter().take(TAG_LEN));
    URL_SAFE_NO_PAD.encode(out)
}

/// Decodes and verifies a cursor; `None` when it is malformed, forged or altered.
pub fn decode(text: &str, key: &[u8]) -> Option<Cursor> {
    let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
    if bytes.len() < 1 + 16 + 8 + 8 + 1 + 1 + 1 + TAG_LEN {
        return None;
    }
    let (body, tag) = bytes.split_at(bytes.len() - TAG_LEN);
    let mut mac = HmacSha256::new_from_slice(key).ok()?;
    mac.update(body);
    mac.verify_truncated_left(tag).ok()?;
    let mut r = Reader {
        bytes: body,
        pos: 0,
    };
    if r.byte()? != VERSION {
        return None;
    }
    let fingerprint: [u8; 16] = r.take(16)?.try_into().ok()?;
    let snapshot = r.i64()?;
    let issued = r.i64()?;
    let direction = match r.byte()? {
        0 => Direction::Start,
        1 => Direction::After,
        2 => Direction::Before,
        _ => return None,
    };
    let total = match r.byte()? {
        0 => None,
        _ => Some(r.i64()? as u64),
    };
    let n = r.byte()?;
    let mut keys = Vec::with_capacity(n as usize);
    for _ in 0..n {
        keys.push(match r.byte()? {
            0 => Value::Null,
            1 => Value::Integer(r.i64()?),
            2 => Value::Real(f64::from_le_bytes(r.take(8)?.try_into().ok()?)),
            3 => {
                let len = u32::from_le_bytes(r.take(4)?.try_into().ok()?) as usize;
                Value::Text(String::from_utf8(r.take(len)?.to_vec()).ok()?)
            }
            4 => {
                let len = u32::from_le_bytes(r.take(4)?.try_into().ok()?) as usize;
                Value::Blob(r.take(len)?.to_vec())
            }
            _ => return None,
        });
    }
    if r.pos != body.len() {
        return None;
    }
    Some(Cursor {
        fingerprint,
        snapshot,
        issued,
        direction,
        keys,
        total,
    })
}

fn sign(body: &[u8], key: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length (RFC 2104): the error exists for fixed-size MACs only.
    #[allow(clippy::expect_used)]
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let end = self.pos.checked_add(n)?;
        let slice = self.bytes.get(self.pos..end)?;
        self.pos = end;
        Some(slice)
    }

    fn byte(&mut self) -> Option<u8> {
        self.take(1)?.first().copied()
    }

    fn i64(&mut self) -> Option<i64> {
        Some(i64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Cursor {
        Cursor {
            fingerprint: fingerprint("Observation?code=x"),
            snapshot: 42,
            issued: 1_700_000_000_000_000,
            direction: Direction::After,
            keys: vec![
                Value::Integer(5),
                Value::Real(1.5),
                Value::Text("abc".into()),
                Value::Null,
            ],
            total: Some(7),
        }
    }

    #[test]
    fn cursor_round_trips_under_its_key() {
        let key = b"0123456789abcdef0123456789abcdef";
        let text = encode(&sample(), key);
        assert_eq!(decode(&text, key), Some(sample()));
    }

    #[test]
    fn cursor_with_any_flipped_byte_is_rejected() {
        let key = b"0123456789abcdef0123456789abcdef";
        let bytes = URL_SAFE_NO_PAD
            .decode(encode(&sample(), key))
            .expect("base64");
        for i in 0..bytes.len() {
            let mut forged = bytes.clone();
            forged[i] ^= 0x01;
            assert_eq!(
                decode(&URL_SAFE_NO_PAD.encode(&forged), key),
                None,
                "byte {i}"
            );
        }
    }

    #[test]
    fn cursor_signed_with_another_key_is_rejected() {
        let text = encode(&sample(), b"key one");
        assert_eq!(decode(&text, b"key two"), None);
        assert_eq!(decode("not a cursor", b"key one"), None);
    }
}
