//! Applications bound to a certificate (mutual TLS, RFC 8705): an application registered
//! with a certificate OID must present, at the token endpoint and on every FHIR call, a
//! certificate that chains to a trusted issuer and whose Subject `serialNumber` attribute
//! (OID 2.5.4.5) is that OID, as the service certificates of Kanta's production carry it.
//! Its access tokens name the certificate (`cnf.x5t#S256`) and are refused over a
//! connection presenting any other certificate, or none.
//!
//! This module only compares: the web layer reads the certificate from the TLS connection
//! (or a trusted proxy's header), checks its chain, and hands over what it found as a
//! [`PresentedCertificate`].

use serde::{Deserialize, Serialize};

use crate::apps::App;
use crate::error::OAuthError;

/// The client certificate of a request, as the web layer found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresentedCertificate {
    /// base64url (no padding) of the SHA-256 of the DER certificate: RFC 8705 `x5t#S256`.
    pub thumbprint: String,
    /// The Subject's `serialNumber` attribute, if it has one.
    pub serial_number: Option<String>,
    /// Whether it chains to a trusted issuer of application certificates; why not, if not.
    pub trust: Result<(), String>,
}

/// The confirmation claim of a certificate-bound access token (RFC 8705 §3.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    #[serde(rename = "x5t#S256")]
    pub x5t_s256: String,
}

/// Whether `oid` is usable as an application's certificate OID: dotted decimal arcs, the
/// first 0, 1 or 2 (e.g. `1.2.246.10.12345678.10.1`).
pub fn is_oid(oid: &str) -> bool {
    let mut arcs = oid.split('.');
    let first_ok = matches!(arcs.next(), Some("0" | "1" | "2"));
    let rest: Vec<&str> = arcs.collect();
    oid.len() <= 128
        && first_ok
        && !rest.is_empty()
        && rest.iter().all(|arc| {
            !arc.is_empty()
                && arc.bytes().all(|b| b.is_ascii_digit())
                && (arc.len() == 1 || !arc.starts_with('0'))
        })
}

/// Why a presented certificate does not identify `oid`'s application, or `None` when it does.
pub fn mismatch(oid: &str, presented: Option<&PresentedCertificate>) -> Option<String> {
    let Some(presented) = presented else {
        return Some("this application must present its client certificate".into());
    };
    if let Err(why) = &presented.trust {
        return Some(format!(
            "the client certificate is not from a trusted issuer: {why}"
        ));
    }
    if presented.serial_number.as_deref() != Some(oid) {
        return Some(
            "the client certificate's Subject serialNumber is not this application's OID".into(),
        );
    }
    None
}

/// The certificate thumbprint to bind `app`'s tokens to: `None` for an application without a
/// certificate OID, the presented certificate's when it identifies the application, and an
/// `invalid_client` refusal otherwise.
pub fn binding_for(
    app: &App,
    presented: Option<&PresentedCertificate>,
) -> Result<Option<String>, OAuthError> {
    let Some(oid) = &app.certificate_oid else {
        return Ok(None);
    };
    if let Some(why) = mismatch(oid, presented) {
        return Err(OAuthError::invalid_client(why));
    }
    Ok(presented.map(|p| p.thumbprint.clone()))
}

/// Whether a token bound to `confirmation` may be used with `presented`: `None` when it may
/// (the same certificate, still from a trusted issuer), else why not.
pub fn bound_token_refusal(
    confirmation: &Confirmation,
    presented: Option<&PresentedCertificate>,
) -> Option<&'static str> {
    match presented {
        None => Some("the access token is bound to a client certificate and none was presented"),
        Some(p) if p.thumbprint != confirmation.x5t_s256 => {
            Some("the access token is bound to another client certificate than the one presented")
        }
        Some(p) if p.trust.is_err() => {
            Some("the client certificate is no longer from a trusted issuer")
        }
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn presented(serial: Option<&str>, trust: Result<(), String>) -> PresentedCertificate {
        PresentedCertificate {
            thumbprint: "abc".into(),
            serial_number: serial.map(str::to_owned),
            trust,
        }
    }

    #[test]
    fn oids_are_dotted_decimal() {
        for ok in ["1.2.246.10.12345678.10.1", "2.5.4.5", "0.1"] {
            assert!(is_oid(ok), "{ok}");
        }
        for bad in [
            "",
            "1",
            "3.1",
            "1..2",
            "1.2.",
            "1.02",
            "1.2.x",
            "urn:oid:1.2.3",
            " 1.2",
        ] {
            assert!(!is_oid(bad), "{bad}");
        }
    }

    #[test]
    fn only_a_trusted_certificate_naming_the_oid_identifies_the_application() {
        let oid = "1.2.246.10.1";
        assert_eq!(mismatch(oid, Some(&presented(Some(oid), Ok(())))), None);
        let refused = [
            mismatch(oid, None),
            mismatch(oid, Some(&presented(Some("1.2.246.10.2"), Ok(())))),
            mismatch(oid, Some(&presented(None, Ok(())))),
            mismatch(
                oid,
                Some(&presented(Some(oid), Err("unknown issuer".into()))),
            ),
        ];
        assert!(refused.iter().all(Option::is_some), "{refused:?}");
        assert!(refused[3].as_deref().unwrap().contains("unknown issuer"));
    }

    #[test]
    fn a_bound_token_needs_the_same_trusted_certificate() {
        let cnf = Confirmation {
            x5t_s256: "abc".into(),
        };
        assert_eq!(
            bound_token_refusal(&cnf, Some(&presented(Some("1.2"), Ok(())))),
            None
        );
        assert!(bound_token_refusal(&cnf, None).is_some());
        let mut other = presented(Some("1.2"), Ok(()));
        other.thumbprint = "xyz".into();
        assert!(bound_token_refusal(&cnf, Some(&other)).is_some());
        assert!(bound_token_refusal(&cnf, Some(&presented(None, Err("x".into())))).is_some());
    }

    #[test]
    fn the_confirmation_claim_has_its_rfc_8705_name() {
        let cnf = Confirmation {
            x5t_s256: "abc".into(),
        };
        assert_eq!(
            serde_json::to_value(&cnf).unwrap(),
            serde_json::json!({"x5t#S256": "abc"})
        );
    }
}
