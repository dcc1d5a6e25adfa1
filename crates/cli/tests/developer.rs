//! The developer console at `/developer`, driven through the real binary: a developer signs
//! in, registers a sandbox application, finds a rejected resource of it with its issues, runs
//! the acceptance report of a data content, changes its scopes and keys, and sees and
//! changes nothing of another developer's applications; bad input and forged forms change
//! nothing; a signed-JWT (`private_key_jwt`) client registered here gets tokens with the keys
//! given at registration and with no other. In production a developer signs in at their
//! organisation's identity provider (the shared test provider, `phr-test-oidc`): only of an
//! organisation registered in PHR, registering only under production's rules, seeing only
//! their own applications; every failed sign-in is a readable page and no session; without
//! that provider the console answers 501.

mod common;

use common::browser::{Browser, Page, csrf};
use common::*;
use reqwest::StatusCode;
use serde_json::Value;

const SCOPE: &str = "patient/Observation.cruds patient/Patient.read";

fn sign_in(browser: &mut Browser, email: &str) -> Page {
    let page = browser.get("/developer");
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body.contains("Sign in as a developer"),
        "{}",
        page.body
    );
    let token = csrf(&page.body);
    browser.post("/developer/login", &[("csrf", &token), ("email", email)])
}

fn register(browser: &mut Browser, name: &str, redirect: &str, client_type: &str) -> Page {
    let page = browser.get("/developer/register");
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let token = csrf(&page.body);
    browser.post(
        "/developer/register",
        &[
            ("csrf", &token),
            ("name", name),
            ("redirect_uris", redirect),
            ("scope", SCOPE),
            ("client_type", client_type),
            ("contact", ""),
        ],
    )
}

/// The text of the element with `id` (the registration page's client id and secret).
fn code_by_id(html: &str, id: &str) -> Option<String> {
    let start = html.find(&format!("id=\"{id}\">"))? + id.len() + 6;
    html[start..].split('<').next().map(str::to_string)
}

/// The applications developers registered (not the server's own portal client).
fn app_ids(server: &Server) -> Vec<String> {
    let list: Value = serde_json::from_str(&server.admin(&["app", "list", "--json"])).unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .filter(|a| a["developer"].is_string())
        .filter_map(|a| a["app_id"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn a_developer_registers_an_app_finds_its_rejected_resource_and_runs_the_acceptance_report() {
    let server = Server::start(&[]);
    let mut dev = Browser::new(&server);

    // Bad input: a readable page, no session.
    let refused = sign_in(&mut dev, "not an address");
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(
        refused.body.contains("Enter an e-mail address"),
        "{}",
        refused.body
    );
    assert_eq!(dev.get("/developer/register").status, StatusCode::SEE_OTHER);

    let signed_in = sign_in(&mut dev, "Dev@Example.fi");
    assert_eq!(
        signed_in.status,
        StatusCode::SEE_OTHER,
        "{}",
        signed_in.body
    );
    let home = dev.get("/developer");
    assert!(
        home.body.contains("dev@example.fi") && home.body.contains("not registered any"),
        "{}",
        home.body
    );

    // A bad registration changes nothing; a forged one neither.
    let bad = register(&mut dev, "Sokerikirja", "http://example.com/cb", "public");
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("role=\"alert\""), "{}", bad.body);
    let forged = dev.post(
        "/developer/register",
        &[
            ("csrf", "forged"),
            ("name", "X"),
            ("redirect_uris", "http://127.0.0.1:9/cb"),
        ],
    );
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(app_ids(&server).is_empty());

    // A confidential client: its secret is shown once, on the registration page only.
    let done = register(
        &mut dev,
        "Sokerikirja",
        "http://127.0.0.1:9/callback",
        "confidential",
    );
    assert_eq!(done.status, StatusCode::CREATED, "{}", done.body);
    let app = code_by_id(&done.body, "client-id").expect("client id shown");
    let secret = code_by_id(&done.body, "client-secret").expect("secret shown once");
    assert_eq!(app_ids(&server), vec![app.clone()]);

    // The app sends an invalid reading (its status is an identity code, which the refusal
    // echoes) and a valid one.
    let hetu = test_hetu("010190", 931);
    let (patient, token) = server.token(&hetu, &app, SCOPE);
    let mut invalid = glucose(&patient, "2026-11-02T08:00:00+02:00", 7.5);
    invalid["status"] = Value::String(hetu.clone());
    let refused = server.post_as(&token, "Observation", &invalid);
    assert_eq!(refused.status(), 422);
    let outcome = body(refused);
    let expected = issues(&outcome);
    assert!(
        expected
            .iter()
            .any(|(_, _, expression)| !expression.is_empty()),
        "an issue names its FHIRPath: {outcome:#}"
    );
    let valid = glucose(&patient, "2026-11-03T08:00:00+02:00", 6.5);
    assert_eq!(server.post_as(&token, "Observation", &valid).status(), 201);

    let home = dev.get("/developer");
    assert!(
        home.body.contains(&format!("/developer/apps/{app}")),
        "{}",
        home.body
    );
    let page = dev.get(&format!("/developer/apps/{app}"));
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let html = page.body;
    assert!(
        html.contains("Sandbox traffic") && html.contains("<td>create</td>"),
        "{html}"
    );
    assert!(
        html.contains("<td>422</td>") && html.contains("<td>201</td>"),
        "{html}"
    );
    assert!(html.contains("Rejected resources"), "{html}");
    assert!(
        html.contains("http://phr.kanta.fi/StructureDefinition/fiphr-sd-bloodglucose"),
        "the claimed profile: {html}"
    );
    for (_, code, expression) in &expected {
        assert!(html.contains(&format!("<td>{code}</td>")), "{code}: {html}");
        assert!(
            html.contains(&format!("<code>{expression}</code>")),
            "{expression}: {html}"
        );
    }
    assert!(!html.contains(&hetu), "no identity code on the console");
    assert!(!html.contains(&secret), "the secret is never shown again");
    assert!(!html.contains(&token), "no token on the console");

    // The acceptance report, from the same checks as `phr app acceptance`.
    let report = dev.get(&format!(
        "/developer/apps/{app}/acceptance?content=blood-glucose"
    ));
    assert_eq!(report.status, StatusCode::OK, "{}", report.body);
    assert!(
        report.body.contains("Some checks failed"),
        "{}",
        report.body
    );
    for check in [
        "valid-resources",
        "conditional-create",
        "no-duplicates",
        "bundle-limit",
        "hourly-budget",
        "search-patient",
    ] {
        assert!(
            report.body.contains(&format!("id=\"check-{check}\"")),
            "{check}"
        );
    }
    assert!(report.body.contains("id=\"failed-valid-resources\""));
    assert!(report.body.contains("id=\"failed-conditional-create\""));
    assert!(!report.body.contains("id=\"failed-bundle-limit\""));
    assert!(!report.body.contains(&hetu));
    let unknown = dev.get(&format!(
        "/developer/apps/{app}/acceptance?content=nonsense"
    ));
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert!(
        unknown.body.contains("Unknown data content"),
        "{}",
        unknown.body
    );

    // The page is in Finnish and Swedish too.
    let fi = dev.get(&format!("/developer/apps/{app}?lang=fi"));
    assert!(fi.body.contains("Hylätyt resurssit") && fi.body.contains("lang=\"fi\""));
    let sv = dev.get(&format!("/developer/apps/{app}?lang=sv"));
    assert!(sv.body.contains("Avvisade resurser"));
    dev.get("/developer?lang=en");

    // The report's checks speak the page's language; a check without evidence is "not yet
    // observed", not failed.
    let fi = dev.get(&format!(
        "/developer/apps/{app}/acceptance?content=blood-glucose&lang=fi"
    ));
    assert!(
        fi.body
            .contains("Jokainen kirjoitettu resurssi on ilmoittamansa profiilin mukainen"),
        "{}",
        fi.body
    );
    assert!(fi.body.contains("ei vielä havaittu"), "{}", fi.body);
    let sv = dev.get(&format!(
        "/developer/apps/{app}/acceptance?content=blood-glucose&lang=sv"
    ));
    assert!(sv.body.contains("Sökningar anger patient"), "{}", sv.body);
    dev.get("/developer?lang=en");

    // The withdrawn-grant probe: a forged form changes nothing; the console's button starts
    // it (as `phr app probe --start` does) and the report then waits for the app's calls.
    let token_of_form = csrf(&dev.get(&format!("/developer/apps/{app}")).body);
    let probe = format!("/developer/apps/{app}/probe");
    assert_eq!(
        dev.post(&probe, &[("csrf", "forged")]).status,
        StatusCode::FORBIDDEN
    );
    assert!(server.admin(&["app", "probe", &app]).contains("no probe"));
    let started = dev.post(&probe, &[("csrf", &token_of_form)]);
    assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.body);
    assert!(server.admin(&["app", "probe", &app]).contains("started"));
    let page = dev.get(&format!("/developer/apps/{app}"));
    assert!(page.body.contains("Probe started"), "{}", page.body);
    let report = dev.get(&format!(
        "/developer/apps/{app}/acceptance?content=blood-glucose"
    ));
    assert!(
        report
            .body
            .contains("the application has made no call since the probe started"),
        "{}",
        report.body
    );
    // The server itself withdrew the grant: the app's token stops working at once.
    assert_eq!(
        server
            .get_as(&token, &format!("Patient/{patient}"))
            .status(),
        401,
        "the probe withdrew the app's grant"
    );

    // Redirect URIs: a bad list is refused with the reason and changes nothing.
    let redirects = format!("/developer/apps/{app}/redirects");
    let bad = dev.post(
        &redirects,
        &[
            ("csrf", &token_of_form),
            ("redirect_uris", "http://example.com/cb"),
        ],
    );
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("role=\"alert\""), "{}", bad.body);
    let saved = dev.post(
        &redirects,
        &[
            ("csrf", &token_of_form),
            (
                "redirect_uris",
                "http://127.0.0.1:9/callback\nhttps://sokeri.example/cb",
            ),
        ],
    );
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let shown: Value =
        serde_json::from_str(&server.admin(&["app", "show", &app, "--json"])).unwrap();
    assert_eq!(
        shown["redirect_uris"].as_array().map(Vec::len),
        Some(2),
        "{shown}"
    );

    // A new client secret is shown once and replaces the old one.
    let renewed = dev.post(
        &format!("/developer/apps/{app}/secret"),
        &[("csrf", &token_of_form)],
    );
    assert_eq!(renewed.status, StatusCode::OK, "{}", renewed.body);
    let second = code_by_id(&renewed.body, "client-secret").expect("new secret shown");
    assert_ne!(second, secret);
    assert!(
        !dev.get(&format!("/developer/apps/{app}"))
            .body
            .contains(&second)
    );

    // Another developer sees nothing of it, and changes nothing.
    let mut other = Browser::new(&server);
    assert_eq!(
        sign_in(&mut other, "other@example.fi").status,
        StatusCode::SEE_OTHER
    );
    let other_token = csrf(&other.get("/developer").body);
    let refused = other.post(
        &redirects,
        &[
            ("csrf", &other_token),
            ("redirect_uris", "http://127.0.0.1:7/cb"),
        ],
    );
    assert_eq!(refused.status, StatusCode::NOT_FOUND);
    let home = other.get("/developer");
    assert!(!home.body.contains(&app), "{}", home.body);
    for path in [
        format!("/developer/apps/{app}"),
        format!("/developer/apps/{app}/acceptance?content=blood-glucose"),
        "/developer/apps/no-such-app".to_string(),
    ] {
        let page = other.get(&path);
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{path}");
        assert!(page.body.contains("You have no such application"));
    }

    // Signing out needs the form's token; afterwards the console asks to sign in again.
    assert_eq!(
        dev.post("/developer/logout", &[("csrf", "forged")]).status,
        StatusCode::FORBIDDEN
    );
    let token = csrf(&dev.get("/developer").body);
    assert_eq!(
        dev.post("/developer/logout", &[("csrf", &token)]).status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        dev.get(&format!("/developer/apps/{app}")).status,
        StatusCode::SEE_OTHER
    );
}

/// A public EC key (P-256) as a JWK, and its private part `d`.
fn ec_key() -> (Value, &'static str) {
    (
        serde_json::json!({"kty": "EC", "crv": "P-256", "kid": "askel-1", "alg": "ES256",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}),
        "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI",
    )
}

#[test]
fn a_developer_changes_the_scopes_and_keys_of_their_app_and_no_one_else_can() {
    let server = Server::start(&[]);
    let mut dev = Browser::new(&server);
    assert_eq!(
        sign_in(&mut dev, "askel@example.fi").status,
        StatusCode::SEE_OTHER
    );
    let done = register(
        &mut dev,
        "Askelmittari",
        "http://127.0.0.1:9/callback",
        "public",
    );
    assert_eq!(done.status, StatusCode::CREATED, "{}", done.body);
    let app = code_by_id(&done.body, "client-id").expect("client id shown");
    let page = dev.get(&format!("/developer/apps/{app}"));
    let token = csrf(&page.body);
    assert!(
        page.body
            .contains("Tokens already issued, and their refresh tokens, keep the scope")
            && page.body.contains("no keys"),
        "{}",
        page.body
    );
    let show = || -> Value {
        serde_json::from_str(&server.admin(&["app", "show", &app, "--json"])).unwrap()
    };

    // Scopes: stored as registration stores them; a refusal says why, keeps what was
    // entered in the field and changes nothing.
    let scope = format!("/developer/apps/{app}/scope");
    let saved = dev.post(
        &scope,
        &[
            ("csrf", &token),
            ("scope", " patient/Observation.rs   offline_access "),
        ],
    );
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    assert_eq!(
        saved.location.as_deref(),
        Some(format!("/developer/apps/{app}#scope-form").as_str())
    );
    assert_eq!(show()["scope"], "patient/Observation.rs offline_access");
    for (bad, why) in [
        ("patient/Observation.bogus", "malformed scope"),
        ("system/Observation.rs", "private_key_jwt"),
    ] {
        let refused = dev.post(&scope, &[("csrf", &token), ("scope", bad)]);
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(
            refused.body.contains("id=\"scope-error\"")
                && refused.body.contains("The scopes were not saved:")
                && refused.body.contains(why),
            "{bad}: {}",
            refused.body
        );
        assert!(
            refused.body.contains(&format!("value=\"{bad}\"")),
            "what was entered is in the field again"
        );
        assert_eq!(show()["scope"], "patient/Observation.rs offline_access");
    }
    let fi = dev.post(
        &format!("{scope}?lang=fi"),
        &[("csrf", &token), ("scope", "patient/Observation.bogus")],
    );
    assert_eq!(fi.status, StatusCode::BAD_REQUEST);
    assert!(fi.body.contains("Oikeuksia ei tallennettu"), "{}", fi.body);
    dev.get("/developer?lang=en");

    // Keys: a public JWKS is taken; a private JWK, something that is no JSON, a JWKS beside
    // a jwks_uri and a plain-http jwks_uri are refused and change nothing.
    let keys = format!("/developer/apps/{app}/keys");
    let (public, d) = ec_key();
    let jwks = serde_json::json!({ "keys": [public] }).to_string();
    let saved = dev.post(
        &keys,
        &[("csrf", &token), ("jwks", &jwks), ("jwks_uri", "")],
    );
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    assert_eq!(show()["jwks"]["keys"][0]["kid"], "askel-1");
    assert!(show()["jwks_uri"].is_null());
    let page = dev.get(&format!("/developer/apps/{app}"));
    assert!(
        page.body.contains("askel-1") && page.body.contains("Remove the keys"),
        "{}",
        page.body
    );

    let mut private = ec_key().0;
    private["d"] = Value::String(d.to_string());
    let private_set = serde_json::json!({ "keys": [private] }).to_string();
    let pem = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----";
    for (jwks, uri, why) in [
        (private_set.as_str(), "", "holds private key material"),
        (pem, "", "holds private key material"),
        ("{\"keys\": [", "", "The JWKS is not valid JSON"),
        ("{\"keys\": []}", "", "not a key set with at least one key"),
        (
            jwks.as_str(),
            "https://keys.example.fi/jwks.json",
            "not both",
        ),
        (
            "",
            "http://keys.example.fi/jwks.json",
            "must be an https address",
        ),
    ] {
        let refused = dev.post(
            &keys,
            &[("csrf", &token), ("jwks", jwks), ("jwks_uri", uri)],
        );
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{why}");
        assert!(
            refused.body.contains("id=\"keys-error\"") && refused.body.contains(why),
            "{why}: {}",
            refused.body
        );
        assert!(
            !refused.body.contains(d),
            "a private key is never shown again"
        );
        assert!(!refused.body.contains("MIGHAgEAMBMGByqGSM49"));
        let stored = show();
        assert_eq!(stored["jwks"]["keys"][0]["kid"], "askel-1", "{why}");
        assert!(stored["jwks"]["keys"][0].get("d").is_none());
        assert!(stored["jwks_uri"].is_null(), "{why}");
    }
    let sv = dev.post(
        &format!("{keys}?lang=sv"),
        &[("csrf", &token), ("jwks", &private_set), ("jwks_uri", "")],
    );
    assert_eq!(sv.status, StatusCode::BAD_REQUEST);
    assert!(
        sv.body.contains("delar av en privat nyckel") && !sv.body.contains(d),
        "{}",
        sv.body
    );
    dev.get("/developer?lang=en");

    // A jwks_uri replaces the JWKS; the remove button clears the keys.
    let saved = dev.post(
        &keys,
        &[
            ("csrf", &token),
            ("jwks", ""),
            ("jwks_uri", "https://keys.example.fi/jwks.json"),
        ],
    );
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let stored = show();
    assert_eq!(stored["jwks_uri"], "https://keys.example.fi/jwks.json");
    assert!(stored["jwks"].is_null());

    // Another developer changes nothing of it, and a forged form neither.
    let mut other = Browser::new(&server);
    assert_eq!(
        sign_in(&mut other, "other@example.fi").status,
        StatusCode::SEE_OTHER
    );
    let other_token = csrf(&other.get("/developer").body);
    let refused = other.post(
        &scope,
        &[("csrf", &other_token), ("scope", "patient/Patient.read")],
    );
    assert_eq!(refused.status, StatusCode::NOT_FOUND);
    for form in [
        vec![("csrf", other_token.as_str()), ("remove", "1")],
        vec![
            ("csrf", other_token.as_str()),
            ("jwks", jwks.as_str()),
            ("jwks_uri", ""),
        ],
    ] {
        assert_eq!(other.post(&keys, &form).status, StatusCode::NOT_FOUND);
    }
    assert_eq!(
        dev.post(&keys, &[("csrf", "forged"), ("remove", "1")])
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        dev.post(
            &scope,
            &[("csrf", "forged"), ("scope", "patient/Patient.read")]
        )
        .status,
        StatusCode::FORBIDDEN
    );
    let stored = show();
    assert_eq!(stored["scope"], "patient/Observation.rs offline_access");
    assert_eq!(stored["jwks_uri"], "https://keys.example.fi/jwks.json");

    let removed = dev.post(&keys, &[("csrf", &token), ("remove", "1")]);
    assert_eq!(removed.status, StatusCode::SEE_OTHER, "{}", removed.body);
    let stored = show();
    assert!(
        stored["jwks"].is_null() && stored["jwks_uri"].is_null(),
        "{stored}"
    );
    assert!(
        dev.get(&format!("/developer/apps/{app}"))
            .body
            .contains("no keys")
    );
}

/// A P-256 key made from `seed` (as `crates/server/tests/oauth_services.rs` makes its
/// backend's): the key that signs, and its public JWK named `kid`.
fn signing_key(seed: u8, kid: &str) -> (jsonwebtoken::EncodingKey, Value) {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    use p256::pkcs8::EncodePrivateKey;
    let secret = p256::SecretKey::from_slice(&[seed; 32]).unwrap();
    let point = secret.public_key().to_encoded_point(false);
    let jwk = serde_json::json!({
        "kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256",
        "x": URL_SAFE_NO_PAD.encode(point.x().unwrap()),
        "y": URL_SAFE_NO_PAD.encode(point.y().unwrap()),
    });
    let der = secret.to_pkcs8_der().unwrap();
    (jsonwebtoken::EncodingKey::from_ec_der(der.as_bytes()), jwk)
}

/// A `client_credentials` request authenticated by an assertion signed with `key` (RFC 7523,
/// as SMART Backend Services profile it): the answer's status and body.
fn backend_token(
    server: &Server,
    client_id: &str,
    key: &jsonwebtoken::EncodingKey,
    kid: &str,
    jti: &str,
) -> (StatusCode, Value) {
    let discovery: Value = server
        .client
        .get(format!("{}/.well-known/smart-configuration", server.root))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let token_endpoint = discovery["token_endpoint"].as_str().unwrap().to_string();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some(kid.to_string());
    let claims = serde_json::json!({"iss": client_id, "sub": client_id,
        "aud": token_endpoint, "exp": now + 240, "jti": jti});
    let assertion = jsonwebtoken::encode(&header, &claims, key).unwrap();
    let response = server
        .client
        .post(&token_endpoint)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs([
                    ("grant_type", "client_credentials"),
                    ("scope", "system/Observation.rs"),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("client_assertion", assertion.as_str()),
                ])
                .finish(),
        )
        .send()
        .unwrap();
    let status = response.status();
    (status, response.json().unwrap_or(Value::Null))
}

#[test]
fn a_signed_jwt_client_registered_in_the_console_authenticates_with_its_keys_only() {
    let server = Server::start(&[]);
    let mut dev = Browser::new(&server);
    assert_eq!(
        sign_in(&mut dev, "backend@example.fi").status,
        StatusCode::SEE_OTHER
    );
    let form = dev.get("/developer/register");
    assert!(
        form.body.contains("value=\"private_key_jwt\"")
            && form
                .body
                .contains("Signed JWT (private_key_jwt, public keys)"),
        "{}",
        form.body
    );
    let token = csrf(&form.body);
    let (key, public) = signing_key(7, "backend-1");
    let jwks = serde_json::json!({ "keys": [public] }).to_string();
    let scope = "system/Observation.rs";
    let post = |dev: &mut Browser, path: &str, client_type: &str, jwks: &str, uri: &str| {
        dev.post(
            path,
            &[
                ("csrf", &token),
                ("name", "Taustapalvelu"),
                ("redirect_uris", ""),
                ("scope", scope),
                ("client_type", client_type),
                ("jwks", jwks),
                ("jwks_uri", uri),
                ("contact", ""),
            ],
        )
    };

    // Refused registrations: the form again with the reason and what was entered (never a
    // private key), and no application.
    let (_, mut private) = signing_key(7, "backend-1");
    let d = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc";
    private["d"] = Value::String(d.to_string());
    let private_set = serde_json::json!({ "keys": [private] }).to_string();
    for (client_type, jwks, uri, why) in [
        (
            "private_key_jwt",
            "",
            "",
            "Signed JWT client authentication needs the application&#39;s public keys",
        ),
        (
            "private_key_jwt",
            private_set.as_str(),
            "",
            "holds private key material",
        ),
        (
            "private_key_jwt",
            "",
            "http://keys.example.fi/jwks.json",
            "must be an https address",
        ),
        (
            "public",
            jwks.as_str(),
            "",
            "Public keys are used only with signed JWT",
        ),
        ("mutual_tls", "", "", "Choose the client authentication"),
    ] {
        let refused = post(&mut dev, "/developer/register", client_type, jwks, uri);
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{why}");
        assert!(
            refused.body.contains("id=\"register-error\"")
                && refused.body.contains(why)
                && refused.body.contains("value=\"Taustapalvelu\"")
                && refused.body.contains(&format!("value=\"{scope}\"")),
            "{why}: {}",
            refused.body
        );
        assert!(
            !refused.body.contains(d),
            "a private key is never shown again"
        );
        assert!(app_ids(&server).is_empty(), "{why}: nothing registered");
    }
    let kept = post(
        &mut dev,
        "/developer/register",
        "private_key_jwt",
        "",
        "http://keys.example.fi/jwks.json",
    );
    assert!(
        kept.body.contains(
            "id=\"type-private-key-jwt\" name=\"client_type\" value=\"private_key_jwt\" checked"
        ) && kept
            .body
            .contains("value=\"http://keys.example.fi/jwks.json\""),
        "the choice and the jwks_uri are kept: {}",
        kept.body
    );
    let fi = post(
        &mut dev,
        "/developer/register?lang=fi",
        "private_key_jwt",
        "",
        "",
    );
    assert_eq!(fi.status, StatusCode::BAD_REQUEST);
    assert!(
        fi.body
            .contains("Allekirjoitettu JWT vaatii sovelluksen julkiset avaimet"),
        "{}",
        fi.body
    );
    dev.get("/developer?lang=en");

    // Registered with the JWKS made here: no secret, and the keys are the app's.
    let done = post(
        &mut dev,
        "/developer/register",
        "private_key_jwt",
        &jwks,
        "",
    );
    assert_eq!(done.status, StatusCode::CREATED, "{}", done.body);
    assert!(code_by_id(&done.body, "client-secret").is_none());
    assert!(
        done.body
            .contains("Signed JWT (private_key_jwt, public keys)")
    );
    let app = code_by_id(&done.body, "client-id").expect("client id shown");
    let show = || -> Value {
        serde_json::from_str(&server.admin(&["app", "show", &app, "--json"])).unwrap()
    };
    let stored = show();
    assert_eq!(stored["client_type"], "private_key_jwt", "{stored}");
    assert_eq!(stored["jwks"]["keys"][0]["kid"], "backend-1");
    assert_eq!(stored["scope"], scope);

    // The keys are used: an assertion signed with the app's key gets a system token, one
    // signed with another key (under the same kid) is refused.
    let (status, answer) = backend_token(&server, &app, &key, "backend-1", "jti-console-1");
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["scope"], scope);
    assert!(answer["access_token"].is_string());
    let (other, _) = signing_key(9, "backend-1");
    let (status, answer) = backend_token(&server, &app, &other, "backend-1", "jti-console-2");
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    assert_eq!(answer["error"], "invalid_client");

    // The app's page names its client authentication; its keys can be replaced but not
    // removed, which would lock it out.
    let page = dev.get(&format!("/developer/apps/{app}"));
    assert!(
        page.body
            .contains("id=\"client-auth\">Signed JWT (private_key_jwt, public keys)")
            && page
                .body
                .contains("checks this application&#39;s signed client assertions")
            && !page.body.contains("Remove the keys"),
        "{}",
        page.body
    );
    let keys = format!("/developer/apps/{app}/keys");
    for form in [
        vec![("csrf", token.as_str()), ("remove", "1")],
        vec![("csrf", token.as_str()), ("jwks", ""), ("jwks_uri", "")],
    ] {
        let refused = dev.post(&keys, &form);
        assert_eq!(refused.status, StatusCode::BAD_REQUEST);
        assert!(
            refused.body.contains("id=\"keys-error\"")
                && refused.body.contains("its keys cannot be removed"),
            "{}",
            refused.body
        );
        assert_eq!(show()["jwks"]["keys"][0]["kid"], "backend-1");
    }
    let (status, answer) = backend_token(&server, &app, &key, "backend-1", "jti-console-3");
    assert_eq!(status, StatusCode::OK, "still authenticates: {answer}");

    // New keys replace the old: the other key now authenticates, the old one no more.
    let (_, other_public) = signing_key(9, "backend-2");
    let replaced = dev.post(
        &keys,
        &[
            ("csrf", &token),
            (
                "jwks",
                &serde_json::json!({ "keys": [other_public] }).to_string(),
            ),
            ("jwks_uri", ""),
        ],
    );
    assert_eq!(replaced.status, StatusCode::SEE_OTHER, "{}", replaced.body);
    let (status, _) = backend_token(&server, &app, &other, "backend-2", "jti-console-4");
    assert_eq!(status, StatusCode::OK);
    let (status, _) = backend_token(&server, &app, &key, "backend-1", "jti-console-5");
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[test]
fn in_production_without_an_organisation_identity_provider_the_console_answers_501() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("phr.toml");
    // Production needs an upstream identity provider for citizens; nothing here talks to it.
    std::fs::write(
        &config,
        "[auth]\nmode = \"production\"\n\
         [auth.oidc]\nissuer = \"http://127.0.0.1:9\"\nclient_id = \"phr\"\nclient_secret = \"s\"\n",
    )
    .unwrap();
    let config = config.display().to_string();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let server = Server::start_behind(&data, "https://phr.example.fi", &["--config", &config]);
    let mut browser = Browser::new(&server);
    for path in ["/developer", "/developer/register", "/developer/apps/x"] {
        let page = browser.get(path);
        assert_eq!(page.status, StatusCode::NOT_IMPLEMENTED, "{path}");
        assert!(
            page.body.contains("identity provider") && page.body.contains("[auth.developer_oidc]"),
            "{path}: {}",
            page.body
        );
    }
    for path in ["/developer/sign-in", "/developer/callback?code=x&state=y"] {
        let page = browser.get(path);
        assert_eq!(page.status, StatusCode::NOT_IMPLEMENTED, "{path}");
        assert!(!browser.cookies.contains_key("phr_developer"));
    }
    let page = browser.post("/developer/login", &[("email", "dev@example.fi")]);
    assert_eq!(page.status, StatusCode::NOT_IMPLEMENTED);
}

// --- production: sign-in through an organisation's identity provider -------------------

const ORG_A: &str = "1.2.246.10.1111111.10.0";
const ORG_B: &str = "1.2.246.10.2222222.10.0";
const CERTIFICATE_OID: &str = "1.2.246.10.1111111.10.1";

/// A production server whose developers sign in at `provider` (its citizens' provider is
/// never reached here), with organisations A and B registered.
fn production_console(dir: &std::path::Path, provider: &phr_test_oidc::Provider) -> Server {
    let config = dir.join("phr.toml");
    std::fs::write(
        &config,
        format!(
            "[auth]\nmode = \"production\"\n\
             [auth.oidc]\nissuer = \"http://127.0.0.1:9\"\nclient_id = \"phr\"\nclient_secret = \"s\"\n\
             [auth.developer_oidc]\nissuer = \"{}\"\nclient_id = \"phr-rp\"\n\
             client_secret = \"upstream-secret\"\nscopes = [\"email\", \"profile\"]\norg_claim = \"org\"\n",
            provider.issuer
        ),
    )
    .unwrap();
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let server = Server::start_in(&data, &["--config", &config.display().to_string()]);
    for (oid, name) in [(ORG_A, "Sovellustalo Oy"), (ORG_B, "Toinen Talo Oy")] {
        server.admin(&["org", "register", "--oid", oid, "--name", name]);
    }
    server
}

/// Starts the sign-in at the console: the address at the provider it sends the browser to.
fn start_sign_in(dev: &mut Browser) -> String {
    let home = dev.get("/developer");
    assert_eq!(home.status, StatusCode::OK, "{}", home.body);
    assert!(
        home.body.contains("Sign in through your organisation")
            && home.body.contains("href=\"/developer/sign-in\""),
        "{}",
        home.body
    );
    assert!(!home.body.contains("name=\"email\""), "no e-mail sign-in");
    let start = dev.get("/developer/sign-in");
    assert_eq!(start.status, StatusCode::SEE_OTHER, "{}", start.body);
    start.location.expect("to the identity provider")
}

/// The provider's answer to the browser at `authorize`: the callback address it sends the
/// browser back to. The provider is another site: none of the console's cookies go there.
fn at_provider(authorize: &str) -> String {
    let client = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let answer = client.get(authorize).send().unwrap();
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    answer.headers()["location"].to_str().unwrap().to_string()
}

/// A whole sign-in through the provider; the callback's page.
fn sign_in_at_provider(dev: &mut Browser) -> Page {
    let authorize = start_sign_in(dev);
    let callback = at_provider(&authorize);
    assert!(
        callback.starts_with(&format!("{}/developer/callback?", dev.root)),
        "{callback}"
    );
    dev.get(&callback)
}

/// The query parameter `name` of `url`.
fn param(url: &str, name: &str) -> String {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Asserts that a failed sign-in left no session: the console asks to sign in again.
fn assert_signed_out(dev: &mut Browser) {
    assert!(
        !dev.cookies.contains_key("phr_developer"),
        "{:?}",
        dev.cookies
    );
    assert_eq!(dev.get("/developer/register").status, StatusCode::SEE_OTHER);
    assert!(
        dev.get("/developer")
            .body
            .contains("Sign in through your organisation")
    );
}

fn register_in_production(dev: &mut Browser, certificate_oid: &str) -> Page {
    let page = dev.get("/developer/register");
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body.contains("name=\"certificate_oid\""),
        "{}",
        page.body
    );
    dev.post(
        "/developer/register",
        &[
            ("csrf", &csrf(&page.body)),
            ("name", "Tuotantokirja"),
            ("redirect_uris", "https://app.example.fi/callback"),
            ("scope", SCOPE),
            ("client_type", "public"),
            ("contact", ""),
            ("certificate_oid", certificate_oid),
        ],
    )
}

#[test]
fn in_production_developers_sign_in_at_their_organisations_provider_and_see_only_their_own_apps() {
    let provider = phr_test_oidc::Provider::start("phr-rp", "upstream-secret");
    let dir = tempfile::tempdir().unwrap();
    let server = production_console(dir.path(), &provider);

    // Developer A of organisation A.
    provider.sign_in_as(serde_json::json!({
        "sub": "dev-a", "email": "dev.a@sovellustalo.fi", "name": "Devi A",
        "org": format!("urn:oid:{ORG_A}"),
    }));
    let mut a = Browser::new(&server);
    let back = sign_in_at_provider(&mut a);
    assert_eq!(back.status, StatusCode::SEE_OTHER, "{}", back.body);
    assert_eq!(back.location.as_deref(), Some("/developer"));
    assert!(
        !a.cookies.contains_key("phr_developer_oidc"),
        "attempt used"
    );
    let home = a.get("/developer");
    assert!(
        home.body.contains("Devi A (Sovellustalo Oy)") && home.body.contains("not registered any"),
        "{}",
        home.body
    );
    assert!(!home.body.contains("Sandbox: do not use"), "{}", home.body);

    // The production rule of `phr app register`: a wellbeing application names its service
    // certificate. Without it nothing is registered.
    let refused = register_in_production(&mut a, "");
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert!(
        refused.body.contains("bound to its service certificate"),
        "{}",
        refused.body
    );
    assert!(app_ids(&server).is_empty());
    let done = register_in_production(&mut a, CERTIFICATE_OID);
    assert_eq!(done.status, StatusCode::CREATED, "{}", done.body);
    let app = code_by_id(&done.body, "client-id").expect("client id shown");
    assert_eq!(app_ids(&server), vec![app.clone()]);
    let shown: Value =
        serde_json::from_str(&server.admin(&["app", "show", &app, "--json"])).unwrap();
    let registered = if shown["app"].is_object() {
        &shown["app"]
    } else {
        &shown
    };
    assert_eq!(registered["status"], "sandbox", "{shown:#}");
    assert_eq!(registered["certificate_oid"], CERTIFICATE_OID);
    assert_eq!(registered["supplier"], "Sovellustalo Oy");
    assert_eq!(registered["developer"], format!("oidc:{ORG_A}:dev-a"));

    // The console shows it awaiting acceptance; sandbox-only steps are refused readably.
    let home = a.get("/developer");
    assert!(
        home.body.contains(&format!("/developer/apps/{app}"))
            && home.body.contains("awaiting acceptance"),
        "{}",
        home.body
    );
    let page = a.get(&format!("/developer/apps/{app}"));
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body.contains("id=\"sandbox-only\"") && page.body.contains(CERTIFICATE_OID),
        "{}",
        page.body
    );
    let report = a.get(&format!(
        "/developer/apps/{app}/acceptance?content=blood-glucose"
    ));
    assert_eq!(report.status, StatusCode::FORBIDDEN, "{}", report.body);
    let token = csrf(&page.body);
    let probe = a.post(
        &format!("/developer/apps/{app}/probe"),
        &[("csrf", token.as_str())],
    );
    assert_eq!(probe.status, StatusCode::FORBIDDEN, "{}", probe.body);
    // Its redirect URIs change as in the sandbox, checked the same way.
    let changed = a.post(
        &format!("/developer/apps/{app}/redirects"),
        &[
            ("csrf", token.as_str()),
            ("redirect_uris", "https://app.example.fi/other"),
        ],
    );
    assert_eq!(changed.status, StatusCode::SEE_OTHER, "{}", changed.body);

    // The sandbox's sign-in by e-mail address is not offered in production.
    let mut by_email = Browser::new(&server);
    let page = by_email.post(
        "/developer/login",
        &[("csrf", "x"), ("email", "dev@example.fi")],
    );
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
    assert_signed_out(&mut by_email);

    // Developer B of organisation B sees nothing of A's.
    provider.sign_in_as(serde_json::json!({
        "sub": "dev-b", "org": ORG_B, "email": "dev.b@toinen.fi",
    }));
    let mut b = Browser::new(&server);
    let back = sign_in_at_provider(&mut b);
    assert_eq!(back.status, StatusCode::SEE_OTHER, "{}", back.body);
    let home = b.get("/developer");
    assert!(
        home.body.contains("dev.b@toinen.fi (Toinen Talo Oy)")
            && home.body.contains("not registered any")
            && !home.body.contains(&app),
        "{}",
        home.body
    );
    assert_eq!(
        b.get(&format!("/developer/apps/{app}")).status,
        StatusCode::NOT_FOUND
    );
    let page = b.get("/developer/register");
    let stolen = b.post(
        &format!("/developer/apps/{app}/redirects"),
        &[
            ("csrf", &csrf(&page.body)),
            ("redirect_uris", "https://evil.example.com/cb"),
        ],
    );
    assert_eq!(stolen.status, StatusCode::NOT_FOUND);

    // Both sign-ins are in the audit log, with the organisation; no code or token is.
    let mut exported = String::new();
    for _ in 0..50 {
        exported = server.admin(&["audit", "export"]);
        if exported.matches("\"developer-login\"").count() >= 2 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let logins: Vec<Value> = exported
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|r| r["interaction"] == "developer-login")
        .collect();
    assert_eq!(logins.len(), 2, "{exported}");
    assert_eq!(logins[0]["org_oid"], ORG_A);
    assert_eq!(logins[0]["actor"], format!("developer oidc:{ORG_A}:dev-a"));
    assert_eq!(logins[1]["org_oid"], ORG_B);
    assert!(!exported.contains("upstream-access"), "no token audited");
}

#[test]
fn in_production_a_failed_sign_in_is_a_readable_page_and_no_session() {
    let provider = phr_test_oidc::Provider::start("phr-rp", "upstream-secret");
    let dir = tempfile::tempdir().unwrap();
    let server = production_console(dir.path(), &provider);
    provider.sign_in_as(serde_json::json!({"sub": "dev-a", "org": ORG_A}));

    // A callback whose state is not the attempt's (and the attempt is then used up).
    let mut dev = Browser::new(&server);
    let authorize = start_sign_in(&mut dev);
    let callback = at_provider(&authorize);
    let forged = dev.get("/developer/callback?code=x&state=forged");
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.body);
    assert!(forged.body.contains("does not match"), "{}", forged.body);
    assert_signed_out(&mut dev);
    let replayed = dev.get(&callback);
    assert_eq!(
        replayed.status,
        StatusCode::BAD_REQUEST,
        "{}",
        replayed.body
    );
    assert_signed_out(&mut dev);

    // The provider's own error.
    let authorize = start_sign_in(&mut dev);
    let state = param(&authorize, "state");
    let refused = dev.get(&format!(
        "/developer/callback?error=access_denied&state={state}"
    ));
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{}", refused.body);
    assert!(refused.body.contains("access_denied"), "{}", refused.body);
    assert_signed_out(&mut dev);

    // A callback without a sign-in attempt of this browser (expired, or another browser's).
    let authorize = start_sign_in(&mut dev);
    let callback = at_provider(&authorize);
    let mut other = Browser::new(&server);
    let expired = other.get(&callback);
    assert_eq!(expired.status, StatusCode::BAD_REQUEST, "{}", expired.body);
    assert!(expired.body.contains("has expired"), "{}", expired.body);
    assert_signed_out(&mut other);

    // A missing claim: the provider names no organisation.
    provider.sign_in_as(serde_json::json!({"sub": "dev-c"}));
    let missing = sign_in_at_provider(&mut dev);
    assert_eq!(missing.status, StatusCode::FORBIDDEN, "{}", missing.body);
    assert!(
        missing.body.contains("Missing claim: org"),
        "{}",
        missing.body
    );
    assert_signed_out(&mut dev);

    // An organisation not registered in PHR.
    provider.sign_in_as(serde_json::json!({"sub": "dev-d", "org": "1.2.246.10.9999999.10.0"}));
    let unknown = sign_in_at_provider(&mut dev);
    assert_eq!(unknown.status, StatusCode::FORBIDDEN, "{}", unknown.body);
    assert!(
        unknown.body.contains("not registered in PHR")
            && unknown.body.contains("1.2.246.10.9999999.10.0"),
        "{}",
        unknown.body
    );
    assert_signed_out(&mut dev);

    // An ID token that fails verification (another nonce).
    provider.sign_in_as(serde_json::json!({"sub": "dev-a", "org": ORG_A}));
    provider.wrong_nonce(true);
    let unverified = sign_in_at_provider(&mut dev);
    assert_eq!(
        unverified.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        unverified.body
    );
    assert_signed_out(&mut dev);

    // The page speaks the browser's language.
    provider.wrong_nonce(false);
    provider.sign_in_as(serde_json::json!({"sub": "dev-e"}));
    let mut finnish = Browser::new(&server);
    let home = finnish.get("/developer?lang=fi");
    assert!(
        home.body.contains("Kirjaudu organisaatiosi tunnuksilla"),
        "{}",
        home.body
    );
    let start = finnish.get("/developer/sign-in");
    let page = finnish.get(&at_provider(&start.location.unwrap()));
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
    assert!(page.body.contains("Puuttuva tieto"), "{}", page.body);
    assert!(app_ids(&server).is_empty());
}
