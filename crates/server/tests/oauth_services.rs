//! Backend services (client_credentials + private_key_jwt), the operator and test helpers,
//! self-service registration, discovery documents and the audit log.

mod common;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::*;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::EncodePrivateKey;
use phr_auth::{AppKind, AppStatus, AuditRecord, ClientType, Interaction, NewApp};
use serde_json::{Value, json};

fn backend_key() -> (jsonwebtoken::EncodingKey, Value) {
    let secret = p256::SecretKey::from_slice(&[7u8; 32]).unwrap();
    let point = secret.public_key().to_encoded_point(false);
    let jwk = json!({
        "kty": "EC", "crv": "P-256", "kid": "backend-1", "alg": "ES256",
        "x": URL_SAFE_NO_PAD.encode(point.x().unwrap()),
        "y": URL_SAFE_NO_PAD.encode(point.y().unwrap()),
    });
    (
        jsonwebtoken::EncodingKey::from_ec_der(secret.to_pkcs8_der().unwrap().as_bytes()),
        json!({"keys": [jwk]}),
    )
}

fn assertion(h: &Harness, key: &jsonwebtoken::EncodingKey, client_id: &str, jti: &str) -> String {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some("backend-1".into());
    let claims = json!({"iss": client_id, "sub": client_id, "aud": format!("{}/oauth/token", h.base), "exp": now + 240, "jti": jti});
    jsonwebtoken::encode(&header, &claims, key).unwrap()
}

#[tokio::test]
async fn backend_service_gets_a_system_token_with_private_key_jwt() {
    let h = start(|_| {}).await;
    let (key, jwks) = backend_key();
    let app = h
        .service
        .register_app(
            NewApp {
                app_id: Some("1.2.246.10.backend".into()),
                name: "Backend".into(),
                kind: AppKind::Wellbeing,
                client_type: ClientType::PrivateKeyJwt,
                redirect_uris: vec![],
                scope: "system/Observation.rs".into(),
                contact: None,
                jwks: Some(jwks),
                jwks_uri: None,
                org: None,
                certificate_oid: None,
                supplier: None,
                platform: None,
                fhir_versions: None,
            },
            AppStatus::Sandbox,
        )
        .unwrap()
        .app
        .app_id;
    let signed = assertion(&h, &key, &app, "jti-1");
    let form = [
        ("grant_type", "client_credentials"),
        ("scope", "system/Observation.rs system/Observation.cud"),
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ),
        ("client_assertion", signed.as_str()),
    ];
    let (status, token) = token_request(&h, &form, None).await;
    assert_eq!(status, 200, "{token}");
    assert_eq!(token["scope"], "system/Observation.rs");
    assert!(token.get("patient").is_none() && token.get("refresh_token").is_none());
    let (context, _) = h
        .service
        .authorize(Some(&bearer(&token)), "Observation", Interaction::Search)
        .unwrap();
    assert!(context.is_system());
    assert_eq!(
        h.service
            .authorize(Some(&bearer(&token)), "Observation", Interaction::Create)
            .unwrap_err()
            .status(),
        403
    );

    // The same assertion cannot be used twice.
    let (status, error) = token_request(&h, &form, None).await;
    assert_eq!(
        (status, error["error"].as_str()),
        (401, Some("invalid_client"))
    );

    // An assertion signed by another key is refused.
    let other = jsonwebtoken::EncodingKey::from_ec_der(
        p256::SecretKey::from_slice(&[9u8; 32])
            .unwrap()
            .to_pkcs8_der()
            .unwrap()
            .as_bytes(),
    );
    let forged = assertion(&h, &other, &app, "jti-2");
    let form = [
        ("grant_type", "client_credentials"),
        ("scope", "system/Observation.rs"),
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ),
        ("client_assertion", forged.as_str()),
    ];
    let (status, _) = token_request(&h, &form, None).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn client_credentials_is_refused_for_public_clients() {
    let h = start(|_| {}).await;
    let app = public_app(&h);
    let (status, error) = token_request(
        &h,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "system/Observation.rs"),
            ("client_id", &app),
        ],
        None,
    )
    .await;
    assert_eq!(
        (status, error["error"].as_str()),
        (400, Some("unauthorized_client"))
    );
    let (status, error) =
        token_request(&h, &[("grant_type", "password"), ("client_id", &app)], None).await;
    assert_eq!(
        (status, error["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
}

#[tokio::test]
async fn cli_token_helper_takes_the_citizen_into_use_in_sandbox_only() {
    let h = start(|_| {}).await;
    let app = public_app(&h);
    let issued = h
        .service
        .issue_token_for_cli(&adult(), &app, "patient/Observation.read offline_access")
        .unwrap();
    assert_eq!(
        issued.token.patient.as_deref(),
        Some(issued.patient_id.as_str())
    );
    assert!(issued.token.refresh_token.is_some());
    let header = format!("Bearer {}", issued.token.access_token);
    let (context, _) = h
        .service
        .authorize(Some(&header), "Observation", Interaction::Read)
        .unwrap();
    assert_eq!(context.patient.as_deref(), Some(issued.patient_id.as_str()));
    assert_eq!(h.patients.stored.lock().unwrap().len(), 1);

    // Same person again: same patient, same grant (same scope).
    let again = h
        .service
        .issue_token_for_cli(&adult(), &app, "patient/Observation.read offline_access")
        .unwrap();
    assert_eq!(again.patient_id, issued.patient_id);
    assert_eq!(again.grant_id, issued.grant_id);

    // Real identity codes are refused in the sandbox.
    assert!(
        h.service
            .issue_token_for_cli(&hetu("010190", '-', 123), &app, "patient/Observation.read")
            .is_err()
    );
    // Another person is another compartment.
    let other = h
        .service
        .issue_token_for_cli(&hetu("020290", '-', 902), &app, "patient/Observation.read")
        .unwrap();
    assert_ne!(other.patient_id, issued.patient_id);
}

#[tokio::test]
async fn registration_api_creates_sandbox_apps() {
    let h = start(|_| {}).await;
    let response = h
        .http
        .post(format!("{}/oauth/register", h.base))
        .json(&json!({
            "client_name": "Unikello",
            "redirect_uris": ["https://unikello.example/cb"],
            "scope": "patient/Observation.rs offline_access",
            "token_endpoint_auth_method": "client_secret_basic"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    let body: Value = response.json().await.unwrap();
    assert!(body["client_secret"].is_string());
    let app = h
        .service
        .app(body["client_id"].as_str().unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(app.status, AppStatus::Sandbox);
    assert_eq!(app.client_type, ClientType::Confidential);

    let response = h
        .http
        .post(format!("{}/oauth/register", h.base))
        .json(&json!({"client_name": "Bad", "redirect_uris": ["http://example.com/cb"], "scope": "patient/Observation.rs", "token_endpoint_auth_method": "none"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_redirect_uri");
}

#[tokio::test]
async fn the_old_registration_page_address_leads_to_the_developer_console() {
    let h = start(|_| {}).await;
    for page in [
        Browser::default()
            .get(&h.http, &format!("{}/apps/register", h.base))
            .await,
        Browser::default()
            .post(&h.http, &format!("{}/apps/register", h.base), &[])
            .await,
    ] {
        assert_eq!(page.status, 308);
        assert_eq!(page.location.as_deref(), Some("/developer/register"));
    }
}

#[tokio::test]
async fn discovery_documents_describe_the_endpoints() {
    let h = start(|_| {}).await;
    for path in [
        "/.well-known/smart-configuration",
        "/fhir/r4/.well-known/smart-configuration",
    ] {
        let doc: Value = h
            .http
            .get(format!("{}{path}", h.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(doc["token_endpoint"], format!("{}/oauth/token", h.base));
        assert_eq!(
            doc["authorization_endpoint"],
            format!("{}/oauth/authorize", h.base)
        );
        assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
        assert!(
            doc["capabilities"]
                .as_array()
                .unwrap()
                .contains(&json!("permission-v2"))
        );
    }
    let oidc: Value = h
        .http
        .get(format!("{}/.well-known/openid-configuration", h.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(oidc["issuer"], h.base.as_str());
    assert_eq!(oidc["jwks_uri"], format!("{}/oauth/jwks", h.base));
    assert_eq!(
        oidc["id_token_signing_alg_values_supported"],
        json!(["ES256"])
    );
}

#[tokio::test]
async fn audit_records_are_readable_as_audit_events_and_exportable() {
    let h = start(|_| {}).await;
    let app = public_app(&h);
    let issued = h
        .service
        .issue_token_for_cli(&adult(), &app, "patient/Observation.read")
        .unwrap();
    let other = h
        .service
        .issue_token_for_cli(&hetu("020290", '-', 903), &app, "patient/Observation.read")
        .unwrap();
    for (patient_token, count) in [(&issued, 3u64), (&other, 1)] {
        let header = format!("Bearer {}", patient_token.token.access_token);
        let (context, _) = h
            .service
            .authorize(Some(&header), "Observation", Interaction::Search)
            .unwrap();
        let mut record = AuditRecord::for_access(&context, Interaction::Search, "Observation");
        record.search_criteria = Some(format!("patient={}&code=55423-8", patient_token.patient_id));
        record.amount = count;
        record.resources = (0..count).map(|i| format!("Observation/o{i}")).collect();
        h.service.audit(record).unwrap();
    }
    let page = h
        .service
        .audit_events_for_patient(&issued.patient_id, 50, 0)
        .unwrap();
    // The operator's token issuing and the search (newest first), nothing of the other citizen.
    assert_eq!(page.total, 2);
    assert_eq!(page.events[1]["subtype"][0]["code"], "token:cli");
    let event = &page.events[0];
    assert_eq!(event["resourceType"], "AuditEvent");
    assert_eq!(
        event["agent"][0]["who"]["identifier"]["value"],
        app.as_str()
    );
    assert_eq!(
        event["entity"][0]["what"]["reference"],
        format!("Patient/{}", issued.patient_id)
    );
    assert!(!event.to_string().contains(&other.patient_id));

    let mut out = Vec::new();
    let written = h.service.export_audit(&mut out, None, None).unwrap();
    // The app registration, two token issues, the search.
    assert_eq!(written, 5);
    let text = String::from_utf8(out).unwrap();
    assert!(!text.contains("010190"), "no identity codes in the export");
    let searches: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["interaction"] == "search-type")
        .collect();
    let first = &searches[0];
    assert_eq!(first["amount"], 3);
    assert_eq!(first["chain"].as_str().unwrap().len(), 64);
    assert_eq!(h.service.verify_audit_chain().unwrap(), None);
}

#[tokio::test]
async fn audit_records_survive_a_clean_shutdown() {
    let dir = TempDir::new();
    let config = phr_auth::AuthConfig::sandbox(&dir.0, "http://127.0.0.1:1");
    {
        let service = phr_auth::AuthService::open(config.clone()).unwrap();
        for i in 0..500 {
            let mut record = AuditRecord::new(phr_auth::Usage::Operator, "operator");
            record.interaction = Some(format!("op-{i}"));
            service.audit(record).unwrap();
        }
        // Dropped without an explicit flush.
    }
    let service = phr_auth::AuthService::open(config).unwrap();
    let mut out = Vec::new();
    assert_eq!(service.export_audit(&mut out, None, None).unwrap(), 500);
}

#[tokio::test]
async fn changes_made_by_another_process_reach_the_enforcement_cache() {
    let h = start(|_| {}).await;
    let app = public_app(&h);
    let issued = h
        .service
        .issue_token_for_cli(&adult(), &app, "patient/Observation.read")
        .unwrap();
    let header = format!("Bearer {}", issued.token.access_token);
    assert!(
        h.service
            .authorize(Some(&header), "Observation", Interaction::Read)
            .is_ok()
    );

    // The operator CLI opens the same data directory in its own process.
    let operator = phr_auth::AuthService::open(h.service.config().clone()).unwrap();
    operator
        .withdraw_for_sandbox_identity(&adult(), &app)
        .unwrap();
    // The server sees it on its next status check (at most half a second later).
    h.clock.advance(1);
    assert_eq!(
        h.service
            .authorize(Some(&header), "Observation", Interaction::Read)
            .unwrap_err(),
        phr_auth::AccessError::GrantWithdrawn
    );

    let issued = h
        .service
        .issue_token_for_cli(&adult(), &app, "patient/Observation.read")
        .unwrap();
    let header = format!("Bearer {}", issued.token.access_token);
    assert!(
        h.service
            .authorize(Some(&header), "Observation", Interaction::Read)
            .is_ok()
    );
    operator.set_app_status(&app, AppStatus::Suspended).unwrap();
    h.clock.advance(1);
    assert_eq!(
        h.service
            .authorize(Some(&header), "Observation", Interaction::Read)
            .unwrap_err()
            .status(),
        401
    );
}

#[tokio::test]
async fn a_token_for_another_public_url_is_refused_naming_both_urls() {
    let h = start(|_| {}).await;
    let app = public_app(&h);
    // `phr token` without the server's public URL: same folder and keys, another issuer.
    let cli = phr_auth::AuthService::open(phr_auth::AuthConfig::sandbox(
        &h.service.config().data_dir,
        "http://127.0.0.1:8080",
    ))
    .unwrap();
    let issued = cli
        .issue_token_for_cli(&adult(), &app, "patient/Observation.read openid")
        .unwrap();
    let response = h
        .http
        .get(format!("{}/oauth/userinfo", h.base))
        .bearer_auth(&issued.token.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let challenge = response
        .headers()
        .get("www-authenticate")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        challenge,
        format!(
            "Bearer realm=\"phr\", error=\"invalid_token\", error_description=\"the access token was issued by http://127.0.0.1:8080, this server is {}\"",
            h.base
        )
    );
}

#[tokio::test]
async fn an_organisations_system_gets_a_care_relationship_token_naming_its_organisation() {
    let h = start(|_| {}).await;
    let (key, jwks) = backend_key();
    h.service
        .register_org(phr_auth::NewOrganisation {
            oid: "1.2.246.10.55".into(),
            name_fi: "Terveysasema".into(),
            ..Default::default()
        })
        .unwrap();
    let app = h
        .service
        .register_app(
            NewApp {
                app_id: Some("1.2.246.10.55.system".into()),
                name: "Potilastietojärjestelmä".into(),
                kind: AppKind::Professional,
                client_type: ClientType::PrivateKeyJwt,
                redirect_uris: vec![],
                scope: "system/EpisodeOfCare.cruds user/Observation.rs".into(),
                contact: None,
                jwks: Some(jwks),
                jwks_uri: None,
                org: Some("1.2.246.10.55".into()),
                certificate_oid: None,
                supplier: None,
                platform: None,
                fhir_versions: None,
            },
            AppStatus::Accepted,
        )
        .unwrap()
        .app
        .app_id;
    let signed = assertion(&h, &key, &app, "jti-care");
    let form = [
        ("grant_type", "client_credentials"),
        ("scope", "system/EpisodeOfCare.cruds"),
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ),
        ("client_assertion", signed.as_str()),
    ];
    let (status, token) = token_request(&h, &form, None).await;
    assert_eq!(status, 200, "{token}");
    let (context, _) = h
        .service
        .authorize(Some(&bearer(&token)), "EpisodeOfCare", Interaction::Create)
        .unwrap();
    assert!(context.is_system() && context.professional.is_none());
    assert_eq!(context.org.as_deref(), Some("1.2.246.10.55"));
}

#[tokio::test]
async fn in_production_a_wellbeing_apps_token_carries_its_accepted_contents_which_change_at_once() {
    let h = start(|config| {
        config.mode = phr_auth::Mode::Production;
        config.oidc = Some(phr_auth::OidcUpstreamConfig {
            issuer: "http://127.0.0.1:9/idp".into(),
            client_id: "phr-rp".into(),
            client_secret: "upstream-secret".into(),
            hetu_claim: "urn:oid:1.2.246.21".into(),
            scopes: vec![],
            client_auth: phr_auth::UpstreamClientAuth::ClientSecretBasic,
            acr_values: None,
        });
    })
    .await;
    let (key, jwks) = backend_key();
    let app = h
        .service
        .register_app(
            NewApp {
                app_id: Some("1.2.246.10.steps".into()),
                name: "Steps backend".into(),
                kind: AppKind::Wellbeing,
                client_type: ClientType::PrivateKeyJwt,
                redirect_uris: vec![],
                scope: "system/Observation.cruds".into(),
                contact: None,
                jwks: Some(jwks),
                jwks_uri: None,
                org: None,
                certificate_oid: None,
                supplier: Some("Askel Oy".into()),
                platform: Some(phr_auth::Platform::Server),
                fhir_versions: None,
            },
            AppStatus::Accepted,
        )
        .unwrap()
        .app
        .app_id;
    let signed = assertion(&h, &key, &app, "jti-contents");
    let form = [
        ("grant_type", "client_credentials"),
        ("scope", "system/Observation.cruds"),
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ),
        ("client_assertion", signed.as_str()),
    ];
    let (status, token) = token_request(&h, &form, None).await;
    assert_eq!(status, 200, "{token}");
    let context = h.service.authenticate(Some(&bearer(&token))).unwrap();
    let rights = context.contents.expect("limited in production");
    assert!(
        rights.read.is_empty() && rights.write.is_empty(),
        "nothing accepted yet"
    );

    h.service
        .record_test_round(&app, "steps", phr_auth::RoundOutcome::Pass, None)
        .unwrap();
    h.service
        .accept_app_contents(&app, &["steps".to_string()], false, true)
        .unwrap();
    // The same token, at its next request.
    let rights = h
        .service
        .authenticate(Some(&bearer(&token)))
        .unwrap()
        .contents
        .unwrap();
    assert_eq!(
        (
            rights.write.iter().map(String::as_str).collect::<Vec<_>>(),
            rights.read.len()
        ),
        (vec!["steps"], 0)
    );
    let listed = h.service.listed_apps().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].platform, Some(phr_auth::Platform::Server));
}
