//! FHIR HTTP conventions on the way out and the media-type rules on the way in: content
//! negotiation (`Accept`, `_format`), `_pretty`, `Prefer: return=...`, `ETag`,
//! `Last-Modified`, `Location`.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use phr_fhir::{Issue, IssueType};
use phr_service::time::{datetime, to_instant};
use phr_service::{Error, ErrorKind};
use serde_json::Value;
use time::format_description::well_known::Rfc2822;

pub const FHIR_JSON: &str = "application/fhir+json";

/// How a response body is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Format {
    /// Answer with `application/json` rather than `application/fhir+json` (the client asked
    /// for plain JSON only).
    pub plain_json: bool,
    pub pretty: bool,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        if self.plain_json {
            "application/json; charset=utf-8"
        } else {
            "application/fhir+json; charset=utf-8"
        }
    }

    /// `value` as JSON. (Encoding a `serde_json::Value` cannot fail: its keys are strings.)
    pub fn encode(self, value: &Value) -> Vec<u8> {
        let encoded = if self.pretty {
            serde_json::to_vec_pretty(value)
        } else {
            serde_json::to_vec(value)
        };
        encoded.unwrap_or_default()
    }
}

const XML_TYPES: [&str; 4] = ["xml", "application/xml", "application/fhir+xml", "text/xml"];
const JSON_TYPES: [&str; 4] = [
    "json",
    "application/json",
    "application/fhir+json",
    "application/json+fhir",
];

/// Decides the response format from `_format`, `_pretty` and `Accept`. XML, or any other
/// format that is not JSON, gets 406.
pub fn negotiate(headers: &HeaderMap, query: &[(String, String)]) -> Result<Format, Error> {
    let mut format = Format::default();
    for (name, value) in query {
        match name.as_str() {
            "_pretty" => match value.as_str() {
                "true" => format.pretty = true,
                "false" => format.pretty = false,
                _ => {
                    return Err(Error::invalid(format!(
                        "_pretty must be true or false, not '{value}'"
                    )));
                }
            },
            "_format" => {
                let wanted = value
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase();
                if XML_TYPES.contains(&wanted.as_str()) {
                    return Err(not_acceptable(
                        "XML is not supported; this server speaks FHIR JSON only",
                    ));
                }
                if !JSON_TYPES.contains(&wanted.as_str()) {
                    return Err(not_acceptable(format!(
                        "unsupported _format '{value}'; use json"
                    )));
                }
                format.plain_json = wanted == "application/json";
                // An explicit _format overrides Accept.
                return Ok(format);
            }
            _ => {}
        }
    }
    if let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) {
        let mut json_ok = false;
        let mut fhir_json = false;
        let mut xml = false;
        for range in accept.split(',') {
            let media = range
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            match media.as_str() {
                "application/fhir+json" | "application/json+fhir" => {
                    json_ok = true;
                    fhir_json = true
                }
                "application/json" | "*/*" | "application/*" | "" => json_ok = true,
                m if XML_TYPES.contains(&m) => xml = true,
                _ => {}
            }
        }
        if !json_ok {
            return Err(if xml {
                not_acceptable("XML is not supported; this server speaks FHIR JSON only")
            } else {
                not_acceptable(format!(
                    "cannot produce any of '{accept}'; use application/fhir+json"
                ))
            });
        }
        format.plain_json = !fhir_json && accept.to_ascii_lowercase().contains("application/json");
    }
    Ok(format.with_pretty(format.pretty))
}

impl Format {
    fn with_pretty(mut self, pretty: bool) -> Self {
        self.pretty = pretty;
        self
    }
}

fn not_acceptable(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::NotAcceptable, IssueType::NotSupported, message)
}

/// Checks that a request body is FHIR JSON (or plain JSON).
pub fn require_json_body(headers: &HeaderMap) -> Result<(), Error> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if media == "application/fhir+json"
        || media == "application/json"
        || media == "application/json+fhir"
    {
        return Ok(());
    }
    let message = if media.is_empty() {
        "the request has no Content-Type; send application/fhir+json".to_string()
    } else if XML_TYPES.contains(&media.as_str()) {
        "XML is not supported; send application/fhir+json".to_string()
    } else {
        format!("unsupported Content-Type '{content_type}'; send application/fhir+json")
    };
    Err(Error::new(
        ErrorKind::UnsupportedMediaType,
        IssueType::NotSupported,
        message,
    ))
}

/// What the client asked `Prefer: return=` to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Return {
    Minimal,
    #[default]
    Representation,
    OperationOutcome,
}

/// The `Prefer` header: `return=` and `handling=strict|lenient`. Search is strict unless
/// `handling=lenient` is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Prefer {
    pub return_: Return,
    pub lenient: bool,
}

pub fn prefer(headers: &HeaderMap) -> Prefer {
    let mut prefer = Prefer::default();
    for value in headers.get_all("prefer") {
        let Ok(text) = value.to_str() else { continue };
        for token in text.split([',', ';']) {
            match token.trim().to_ascii_lowercase().replace(' ', "").as_str() {
                "return=minimal" => prefer.return_ = Return::Minimal,
                "return=representation" => prefer.return_ = Return::Representation,
                "return=operationoutcome" => prefer.return_ = Return::OperationOutcome,
                "handling=strict" => prefer.lenient = false,
                "handling=lenient" => prefer.lenient = true,
                _ => {}
            }
        }
    }
    prefer
}

/// Parses `If-Match: W/"3"` (or `"3"`, or `3`) into a version number.
pub fn if_match(headers: &HeaderMap) -> Result<Option<u64>, Error> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or("").trim();
    let inner = text.strip_prefix("W/").unwrap_or(text).trim_matches('"');
    inner.parse::<u64>().map(Some).map_err(|_| {
        Error::invalid(format!(
            "If-Match must be a version ETag like W/\"3\", not '{text}'"
        ))
    })
}

pub fn etag(version: u64) -> HeaderValue {
    // Digits and quotes are always a valid header value.
    HeaderValue::from_str(&format!("W/\"{version}\""))
        .unwrap_or(HeaderValue::from_static("W/\"0\""))
}

/// An HTTP date (`Last-Modified`), e.g. `Mon, 23 Nov 2026 15:20:01 GMT`.
pub fn http_date(micros: i64) -> String {
    datetime(micros)
        .format(&Rfc2822)
        .map(|s| s.replace("+0000", "GMT"))
        .unwrap_or_default()
}

/// Metadata of one stored version that goes into response headers.
#[derive(Debug, Clone)]
pub struct VersionHeaders {
    pub version: u64,
    pub last_updated: i64,
    /// `Location`, set on create and update.
    pub location: Option<String>,
}

impl VersionHeaders {
    pub fn apply(&self, headers: &mut HeaderMap) {
        headers.insert(header::ETAG, etag(self.version));
        if let Ok(date) = HeaderValue::from_str(&http_date(self.last_updated)) {
            headers.insert(header::LAST_MODIFIED, date);
        }
        if let Some(location) = &self.location
            && let Ok(value) = HeaderValue::from_str(location)
        {
            headers.insert(header::LOCATION, value);
        }
    }

    pub fn last_modified_instant(&self) -> String {
        to_instant(self.last_updated)
    }
}

/// A response carrying a JSON body.
pub fn json_response(status: StatusCode, body: Vec<u8>, format: Format) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    response
}

/// A stored resource body as a response: the stored bytes go out untouched unless pretty
/// printing was asked for.
pub fn resource_response(status: StatusCode, body: &[u8], format: Format) -> Response {
    if format.pretty
        && let Ok(value) = serde_json::from_slice::<Value>(body)
    {
        return json_response(status, format.encode(&value), format);
    }
    json_response(status, body.to_vec(), format)
}

pub fn outcome_response(status: StatusCode, issues: &[Issue], format: Format) -> Response {
    let body = format.encode(&phr_fhir::outcome::operation_outcome(issues));
    json_response(status, body, format)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefer_reads_return_and_handling() {
        let mut headers = HeaderMap::new();
        assert_eq!(prefer(&headers), Prefer::default());
        assert!(!prefer(&headers).lenient);
        headers.insert(
            "prefer",
            HeaderValue::from_static("return=minimal; handling=lenient"),
        );
        assert_eq!(
            prefer(&headers),
            Prefer {
                return_: Return::Minimal,
                lenient: true
            }
        );
        headers.insert("prefer", HeaderValue::from_static("handling=strict"));
        assert!(!prefer(&headers).lenient);
    }

    #[test]
    fn http_dates_are_gmt() {
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
    }
}
