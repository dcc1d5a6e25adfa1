//! FHIR JSON text to a JSON value, with the errors the specification asks for: a UTF-8
//! byte-order mark is accepted (and ignored), and anything else malformed — bad syntax,
//! a duplicate property name — is an error naming its line and column.
//!
//! ```
//! let v = phr_fhir::json::parse(b"\xEF\xBB\xBF{\"resourceType\": \"Patient\"}").unwrap();
//! assert_eq!(v["resourceType"], "Patient");
//! let e = phr_fhir::json::parse(b"{\n  \"a\": 1,\n  \"a\": 2\n}").unwrap_err();
//! assert_eq!((e.line, e.column), (3, 3));
//! ```
//!
//! This module only parses; what the value means is the validator's business.

use std::collections::HashSet;

use serde_json::Value;

use crate::outcome::{Issue, IssueType};

/// Why a text is not JSON (or not FHIR's JSON), and where: 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct JsonError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl JsonError {
    /// The error as an OperationOutcome issue (`structure`).
    pub fn to_issue(&self) -> Issue {
        Issue::error(
            IssueType::Structure,
            format!("the body is not valid JSON: {self}"),
        )
    }
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Parses FHIR JSON text.
pub fn parse(bytes: &[u8]) -> Result<Value, JsonError> {
    let bytes = bytes.strip_prefix(BOM).unwrap_or(bytes);
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        let text = e.to_string();
        let suffix = format!(" at line {} column {}", e.line(), e.column());
        JsonError {
            line: e.line(),
            column: e.column(),
            message: text.strip_suffix(&suffix).unwrap_or(&text).to_string(),
        }
    })?;
    duplicate_keys(bytes)?;
    Ok(value)
}

enum Frame {
    Object {
        keys: HashSet<Vec<u8>>,
        expect_key: bool,
    },
    Array,
}

/// Finds the first property name repeated in one object (serde_json keeps the last one
/// silently). The text is known to be valid JSON.
fn duplicate_keys(bytes: &[u8]) -> Result<(), JsonError> {
    let mut stack: Vec<Frame> = Vec::new();
    let (mut line, mut column) = (1usize, 0usize);
    let mut i = 0;
    while let Some(&c) = bytes.get(i) {
        column += 1;
        match c {
            b'\n' => {
                line += 1;
                column = 0;
            }
            b'{' => stack.push(Frame::Object {
                keys: HashSet::new(),
                expect_key: true,
            }),
            b'[' => stack.push(Frame::Array),
            b'}' | b']' => {
                stack.pop();
            }
            b',' => {
                if let Some(Frame::Object { expect_key, .. }) = stack.last_mut() {
                    *expect_key = true;
                }
            }
            b'"' => {
                let (start_line, start_column) = (line, column);
                let start = i + 1;
                let mut end = start;
                while let Some(&s) = bytes.get(end) {
                    match s {
                        b'\\' => end += 2,
                        b'"' => break,
                        _ => end += 1,
                    }
                }
                let text = bytes.get(start..end).unwrap_or_default();
                // Columns count characters: continuation bytes of UTF-8 do not.
                column += text.iter().filter(|b| (**b & 0xC0) != 0x80).count() + 1;
                i = end;
                if let Some(Frame::Object { keys, expect_key }) = stack.last_mut()
                    && *expect_key
                {
                    *expect_key = false;
                    let name = property_name(text, bytes.get(start - 1..=end));
                    if !keys.insert(name.as_bytes().to_vec()) {
                        return Err(JsonError {
                            line: start_line,
                            column: start_column,
                            message: format!("duplicate property name '{name}'"),
                        });
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// A property name as its members compare: escapes decoded (`"\u0061"` is `"a"`), so a name
/// cannot appear twice under two spellings. `quoted` is the name with its quotes.
fn property_name<'a>(text: &'a [u8], quoted: Option<&[u8]>) -> std::borrow::Cow<'a, str> {
    if text.contains(&b'\\')
        && let Some(decoded) = quoted.and_then(|q| serde_json::from_slice::<String>(q).ok())
    {
        return std::borrow::Cow::Owned(decoded);
    }
    String::from_utf8_lossy(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_byte_order_mark_is_accepted() {
        let v = parse(b"\xEF\xBB\xBF{\"resourceType\": \"Basic\"}").unwrap();
        assert_eq!(v["resourceType"], "Basic");
    }

    #[test]
    fn syntax_errors_name_line_and_column() {
        let e = parse(b"{\n  \"resourceType\": \"Basic\",\n}").unwrap_err();
        assert_eq!((e.line, e.column), (3, 1), "{e}");
        assert!(e.message.contains("trailing comma"), "{e}");
        let e = parse(b"{\"a\": [1, 2,, 3]}").unwrap_err();
        assert_eq!(e.line, 1);
        assert!(e.column >= 12, "{e}");
        assert!(parse(b"").is_err());
        assert!(parse(b"{\"a\": NaN}").is_err());
        assert!(parse(b"{} {}").is_err());
    }

    // Found by the black-box mutation test: a name written once plainly and once with an
    // escape was two names here and one in serde_json, which kept the last value silently.
    #[test]
    fn a_property_name_repeated_under_an_escaped_spelling_is_a_duplicate() {
        for text in [
            r#"{"status": "final", "st\u0061tus": "amended"}"#,
            r#"{"\u0073tatus": "final", "status": "amended"}"#,
            r#"{"a\/b": 1, "a/b": 2}"#,
            r#"{"x": {"\u00e4": 1, "ä": 2}}"#,
        ] {
            let e = parse(text.as_bytes()).unwrap_err();
            assert!(
                e.message.starts_with("duplicate property name"),
                "{text}: {e}"
            );
        }
        // Different names that only look alike are not duplicates.
        parse(r#"{"a\u0301": 1, "á": 2, "\\u0061": 3, "a": 4}"#.as_bytes()).unwrap();
    }

    #[test]
    fn duplicate_property_names_are_errors() {
        let e = parse("{\"a\": \"ä\", \"b\": {\"c\": 1, \"c\": 2}}".as_bytes()).unwrap_err();
        assert_eq!((e.line, e.column), (1, 26), "{e}");
        assert!(e.message.contains("'c'"));
        // The same name in different objects, or as a value, is fine.
        assert!(parse(b"{\"a\": {\"a\": \"a\"}, \"b\": [{\"a\": 1}, {\"a\": 2}]}").is_ok());
        assert!(parse(b"{\"a\\\"b\": 1, \"a\": 2}").is_ok());
    }
}
