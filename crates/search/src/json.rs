//! Field access tuned for FHIR JSON: most objects (Coding, Quantity, Reference...) have a
//! handful of keys, where comparing the keys in order beats hashing the name.

use serde_json::Value;

/// Objects up to this size are searched linearly.
const LINEAR_MAX: usize = 12;

/// The value under `key` when `v` is an object that has it.
#[inline]
pub fn field<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    let Value::Object(map) = v else {
        return None;
    };
    if map.len() <= LINEAR_MAX {
        map.iter().find(|(k, _)| k.as_str() == key).map(|(_, v)| v)
    } else {
        map.get(key)
    }
}

/// The string under `key`.
#[inline]
pub fn str_field<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    field(v, key).and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_fields_in_small_and_large_objects() {
        let small = json!({"system": "s", "code": "c"});
        assert_eq!(str_field(&small, "code"), Some("c"));
        assert_eq!(field(&small, "display"), None);
        let large: Value = (0..40)
            .map(|i| (format!("k{i}"), json!(i)))
            .collect::<serde_json::Map<_, _>>()
            .into();
        assert_eq!(field(&large, "k39"), Some(&json!(39)));
        assert_eq!(field(&json!("text"), "k"), None);
    }
}
