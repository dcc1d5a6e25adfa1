//! The R4 primitive types: which JSON type each one takes and the exact lexical rules of its
//! value (the regexes of the R4 primitive StructureDefinitions, plus what they cannot say:
//! real calendar dates, integer ranges, base64 padding, decimal text kept exact).

use serde_json::Value;

use crate::datetime;
use crate::outcome::Severity;

/// A broken primitive rule. Most are errors; whitespace around a string is a warning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrimitiveProblem {
    pub severity: Severity,
    pub message: String,
}

fn error(message: String) -> Option<PrimitiveProblem> {
    Some(PrimitiveProblem {
        severity: Severity::Error,
        message,
    })
}

/// Largest string FHIR allows (1 MB).
const MAX_STRING_BYTES: usize = 1024 * 1024;

/// The JSON type a primitive takes in FHIR JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonKind {
    Bool,
    Number,
    String,
}

/// True when `name` is one of the R4 primitive types.
pub fn is_primitive(name: &str) -> bool {
    json_kind(name).is_some()
}

/// The JSON type of primitive `type_name`, or `None` when it is not an R4 primitive.
pub fn json_kind(type_name: &str) -> Option<JsonKind> {
    Some(match type_name {
        "boolean" => JsonKind::Bool,
        "integer" | "positiveInt" | "unsignedInt" | "decimal" => JsonKind::Number,
        "string" | "code" | "id" | "markdown" | "uri" | "url" | "canonical" | "oid" | "uuid"
        | "base64Binary" | "date" | "dateTime" | "instant" | "time" | "xhtml" => JsonKind::String,
        _ => return None,
    })
}

/// Checks `value` as the FHIR primitive `type_name`: JSON type first, then the lexical rule.
/// Returns the first problem found.
pub fn check(type_name: &str, value: &Value) -> Option<PrimitiveProblem> {
    let kind = json_kind(type_name)?;
    match (kind, value) {
        (JsonKind::Bool, Value::Bool(_)) => None,
        (JsonKind::Number, Value::Number(n)) => check_number(type_name, n.as_str()),
        (JsonKind::String, Value::String(s)) => check_string(type_name, s),
        (_, other) => error(format!(
            "a {type_name} must be a JSON {}, not {}",
            match kind {
                JsonKind::Bool => "boolean",
                JsonKind::Number => "number",
                JsonKind::String => "string",
            },
            describe_json(other)
        )),
    }
}

/// "a string", "an object", ... for messages.
pub fn describe_json(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn check_number(type_name: &str, text: &str) -> Option<PrimitiveProblem> {
    if type_name == "decimal" {
        // serde_json has already checked JSON number syntax; FHIR's decimal regex is the
        // same grammar, and with arbitrary_precision the text is kept as written.
        return None;
    }
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return error(format!(
            "{text} is not a valid {type_name}: it must be a whole number"
        ));
    }
    let Ok(v) = text.parse::<i64>() else {
        return error(format!("{text} is out of range for {type_name}"));
    };
    let (min, what) = match type_name {
        "positiveInt" => (1, "1"),
        "unsignedInt" => (0, "0"),
        _ => (i64::from(i32::MIN), "-2147483648"),
    };
    if v < min || v > i64::from(i32::MAX) {
        return error(format!(
            "{text} is out of range for {type_name} ({what}..2147483647)"
        ));
    }
    None
}

fn check_string(type_name: &str, s: &str) -> Option<PrimitiveProblem> {
    if s.is_empty() {
        return error(format!(
            "a {type_name} must not be empty (omit the element instead)"
        ));
    }
    if s.len() > MAX_STRING_BYTES {
        return error(format!("a {type_name} must not exceed 1 MB"));
    }
    let invalid = |why: &str| {
        error(format!(
            "'{}' is not a valid {type_name}: {why}",
            shorten(s)
        ))
    };
    match type_name {
        "string" | "markdown" => {
            if s.chars()
                .any(|c| c.is_control() && !matches!(c, '\r' | '\n' | '\t'))
            {
                return invalid("it contains control characters");
            }
            if type_name == "string" && s.trim().is_empty() {
                return invalid("it contains only whitespace");
            }
            if type_name == "string"
                && (s.starts_with(char::is_whitespace) || s.ends_with(char::is_whitespace))
            {
                return Some(PrimitiveProblem {
                    severity: Severity::Warning,
                    message: format!("'{}' should not start or end with whitespace", shorten(s)),
                });
            }
            None
        }
        "code" => {
            // [^\s]+(\s[^\s]+)*
            let mut prev_space = true;
            for c in s.chars() {
                let space = c.is_whitespace();
                if space && (prev_space || c != ' ') {
                    return invalid(
                        "codes have no leading, trailing, doubled or non-space whitespace",
                    );
                }
                prev_space = space;
            }
            if prev_space {
                return invalid("codes have no trailing whitespace");
            }
            None
        }
        "id" => {
            if s.len() > 64 {
                return invalid("an id is at most 64 characters");
            }
            if !s
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.')
            {
                return invalid("an id has only A-Z, a-z, 0-9, '-' and '.'");
            }
            None
        }
        "uri" | "url" | "canonical" => {
            if s.chars().any(char::is_whitespace) {
                return invalid("it contains whitespace");
            }
            if s.starts_with("urn:oid:") && !is_oid(s) {
                return invalid("an urn:oid: must be a dotted number such as urn:oid:1.2.246");
            }
            if s.starts_with("urn:uuid:") && !is_uuid(s) {
                return invalid("an urn:uuid: must be a lower-case UUID");
            }
            None
        }
        "oid" => (!is_oid(s))
            .then(|| invalid("expected urn:oid: followed by a dotted number"))
            .flatten(),
        "uuid" => (!is_uuid(s))
            .then(|| invalid("expected urn:uuid: followed by a lower-case UUID"))
            .flatten(),
        "base64Binary" => (!is_base64(s))
            .then(|| invalid("it is not base64"))
            .flatten(),
        "date" => datetime::parse_date(s).err().and_then(|e| error(e.0)),
        "dateTime" => datetime::parse_datetime(s).err().and_then(|e| error(e.0)),
        "instant" => datetime::parse_instant(s).err().and_then(|e| error(e.0)),
        "time" => datetime::parse_time(s).err().and_then(|e| error(e.0)),
        "xhtml" => check_xhtml(s),
        _ => None,
    }
}

fn shorten(s: &str) -> String {
    if s.chars().count() <= 80 {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(77).collect();
        t.push_str("...");
        t
    }
}

/// `urn:oid:[0-2](\.(0|[1-9][0-9]*))+`
pub fn is_oid(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("urn:oid:") else {
        return false;
    };
    let mut parts = rest.split('.');
    let first_ok = matches!(parts.next(), Some("0" | "1" | "2"));
    let mut count = 0;
    let rest_ok = parts.all(|p| {
        count += 1;
        !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()) && (p == "0" || !p.starts_with('0'))
    });
    first_ok && rest_ok && count > 0
}

/// `urn:uuid:` + 8-4-4-4-12 lower-case hex digits.
pub fn is_uuid(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("urn:uuid:") else {
        return false;
    };
    is_bare_uuid(rest, false)
}

/// An 8-4-4-4-12 hex UUID; upper case allowed only when `any_case`.
pub fn is_bare_uuid(s: &str, any_case: bool) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, &c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => {
                c.is_ascii_digit()
                    || (b'a'..=b'f').contains(&c)
                    || (any_case && (b'A'..=b'F').contains(&c))
            }
        })
}

/// Standard base64 with padding; whitespace between groups is ignored.
pub fn is_base64(s: &str) -> bool {
    let mut n = 0usize;
    let mut padding = 0usize;
    for c in s.bytes() {
        match c {
            b' ' | b'\t' | b'\r' | b'\n' => continue,
            b'=' => padding += 1,
            _ if padding > 0 => return false,
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'+' | b'/' => {}
            _ => return false,
        }
        n += 1;
    }
    n.is_multiple_of(4) && padding <= 2
}

/// The R4 narrative rules that matter for safety and parsing: a `div` root in the XHTML
/// namespace, and none of the elements or attributes FHIR forbids (scripts, forms, event
/// handlers). The full XHTML grammar is not checked.
fn check_xhtml(s: &str) -> Option<PrimitiveProblem> {
    let t = s.trim_start();
    if !t.starts_with("<div") {
        return error("narrative must be an XHTML <div> element".to_string());
    }
    let head_end = t.find('>').unwrap_or(t.len());
    if !t[..head_end].contains("http://www.w3.org/1999/xhtml") {
        return error(
            "narrative <div> must declare xmlns=\"http://www.w3.org/1999/xhtml\"".to_string(),
        );
    }
    let lower = t.to_ascii_lowercase();
    for tag in [
        "<script", "<form", "<iframe", "<object", "<embed", "<input", "<button", "<style", "<base",
        "<link", "<meta",
    ] {
        if let Some(i) = lower.find(tag) {
            let after = lower.as_bytes().get(i + tag.len()).copied().unwrap_or(b'>');
            if matches!(after, b' ' | b'>' | b'/' | b'\t' | b'\n' | b'\r') {
                return error(format!("narrative must not contain {tag}> elements"));
            }
        }
    }
    if has_event_attribute(&lower) {
        return error("narrative must not contain event handler (on*) attributes".to_string());
    }
    None
}

fn has_event_attribute(lower: &str) -> bool {
    // Inside a tag, an attribute whose name starts with "on".
    let b = lower.as_bytes();
    let mut in_tag = false;
    for (i, &c) in b.iter().enumerate() {
        match c {
            b'<' => in_tag = true,
            b'>' => in_tag = false,
            c if in_tag
                && c.is_ascii_whitespace()
                && b.get(i + 1..).is_some_and(|rest| rest.starts_with(b"on")) =>
            {
                let name_end = b
                    .get(i + 1..)
                    .unwrap_or_default()
                    .iter()
                    .position(|c| !c.is_ascii_alphanumeric())
                    .map(|p| i + 1 + p);
                if let Some(end) = name_end
                    && end > i + 3
                    && b.get(end..)
                        .unwrap_or_default()
                        .iter()
                        .find(|c| !c.is_ascii_whitespace())
                        == Some(&b'=')
                {
                    return true;
                }
            }
            _ => {}
        }
    }
    false
}

/// True when the narrative has some text content or an image (R4 txt-2).
pub fn xhtml_has_content(s: &str) -> bool {
    let mut in_tag = false;
    let lower = s.to_ascii_lowercase();
    if lower.contains("<img") {
        return true;
    }
    for c in s.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag && !c.is_whitespace() => return true,
            _ => {}
        }
    }
    false
}

/// The values of attribute `name` (`href`, `id`) in an XHTML fragment, in order.
pub fn xhtml_attribute_values<'x>(xhtml: &'x str, name: &str) -> Vec<&'x str> {
    let mut out = Vec::new();
    let mut rest = xhtml;
    while let Some(at) = rest.find(name) {
        let before = rest.get(..at).and_then(|b| b.chars().last());
        let after = rest.get(at + name.len()..).unwrap_or_default();
        rest = after;
        // A whole attribute name: preceded by whitespace, followed by `=` and a quote.
        if !before.is_some_and(char::is_whitespace) {
            continue;
        }
        let Some(value) = after.trim_start().strip_prefix('=') else {
            continue;
        };
        let value = value.trim_start();
        let Some(quote) = value.chars().next().filter(|q| *q == '"' || *q == '\'') else {
            continue;
        };
        let inner = value.get(1..).unwrap_or_default();
        if let Some(end) = inner.find(quote) {
            out.push(inner.get(..end).unwrap_or_default());
        }
    }
    out
}

/// The bytes of a base64Binary value (whitespace ignored, as FHIR allows), `None` when it
/// is not base64.
pub fn decode_base64(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .ok()
}

/// Standard base64 with padding.
pub fn encode_base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn bad(t: &str, v: Value) -> bool {
        matches!(check(t, &v), Some(p) if p.severity == Severity::Error)
    }

    #[test]
    fn json_type_must_match_the_primitive() {
        assert!(bad("boolean", json!("true")));
        assert!(bad("integer", json!("1")));
        assert!(bad("string", json!(1)));
        assert!(bad("date", json!({"value": "2024"})));
        assert!(check("boolean", &json!(false)).is_none());
    }

    #[test]
    fn integers_have_ranges() {
        assert!(check("integer", &json!(-2147483648i64)).is_none());
        assert!(bad("integer", json!(2147483648i64)));
        assert!(bad("positiveInt", json!(0)));
        assert!(check("positiveInt", &json!(1)).is_none());
        assert!(bad("unsignedInt", json!(-1)));
        assert!(check("unsignedInt", &json!(0)).is_none());
        let one_point_oh: Value = serde_json::from_str("1.0").unwrap();
        assert!(bad("integer", one_point_oh));
        let exp: Value = serde_json::from_str("1e3").unwrap();
        assert!(bad("integer", exp));
    }

    #[test]
    fn decimals_keep_their_text() {
        let v: Value = serde_json::from_str("1.50").unwrap();
        assert!(check("decimal", &v).is_none());
        assert_eq!(v.to_string(), "1.50");
    }

    #[test]
    fn strings_are_never_empty_and_warn_on_outer_whitespace() {
        assert!(bad("string", json!("")));
        assert!(bad("string", json!("  ")));
        assert!(bad("string", json!("a\u{0001}b")));
        let p = check("string", &json!(" padded")).unwrap();
        assert_eq!(p.severity, Severity::Warning);
        assert!(check("string", &json!("line\nbreak")).is_none());
    }

    #[test]
    fn codes_ids_and_uris() {
        assert!(check("code", &json!("mm[Hg]")).is_none());
        assert!(check("code", &json!("a b")).is_none());
        assert!(bad("code", json!("a  b")));
        assert!(bad("code", json!(" a")));
        assert!(bad("code", json!("a ")));
        assert!(check("id", &json!("abc-1.2")).is_none());
        assert!(bad("id", json!("a_b")));
        assert!(bad("id", json!("x".repeat(65))));
        assert!(bad("uri", json!("http://a b")));
        assert!(check("uri", &json!("urn:ietf:rfc:3986")).is_none());
        assert!(bad("uri", json!("urn:uuid:XYZ")));
        assert!(check("oid", &json!("urn:oid:1.2.246.537.6.55")).is_none());
        assert!(bad("oid", json!("urn:oid:3.1")));
        assert!(bad("oid", json!("urn:oid:1.02")));
        assert!(
            check(
                "uuid",
                &json!("urn:uuid:0f2e6c2a-8b3e-4a7a-9d5c-1c2b3a4d5e6f")
            )
            .is_none()
        );
        assert!(bad(
            "uuid",
            json!("urn:uuid:0F2E6C2A-8B3E-4A7A-9D5C-1C2B3A4D5E6F")
        ));
    }

    #[test]
    fn base64_needs_padding_and_alphabet() {
        assert!(check("base64Binary", &json!("aGVsbG8=")).is_none());
        assert!(check("base64Binary", &json!("a+/b")).is_none());
        assert!(bad("base64Binary", json!("aGVsbG8")));
        assert!(bad("base64Binary", json!("aGV=sbG8")));
        assert!(bad("base64Binary", json!("aGVs*G8=")));
    }

    #[test]
    fn dates_use_the_calendar() {
        assert!(bad("date", json!("2023-02-29")));
        assert!(bad("dateTime", json!("2024-01-01T10:00:00")));
        assert!(check("instant", &json!("2024-01-01T10:00:00.000+02:00")).is_none());
        assert!(bad("time", json!("25:00:00")));
    }

    #[test]
    fn narrative_is_a_safe_xhtml_div() {
        let ok = "<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>Paino 80 kg</p></div>";
        assert!(check("xhtml", &json!(ok)).is_none());
        assert!(bad("xhtml", json!("<p>x</p>")));
        assert!(bad("xhtml", json!("<div>x</div>")));
        assert!(bad(
            "xhtml",
            json!("<div xmlns=\"http://www.w3.org/1999/xhtml\"><script>x</script></div>")
        ));
        assert!(bad(
            "xhtml",
            json!("<div xmlns=\"http://www.w3.org/1999/xhtml\"><a onclick=\"x()\">x</a></div>")
        ));
        assert!(xhtml_has_content(ok));
        assert!(!xhtml_has_content(
            "<div xmlns=\"http://www.w3.org/1999/xhtml\"> </div>"
        ));
    }
}
