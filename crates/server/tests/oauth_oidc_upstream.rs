//! Production login through an upstream OpenID Connect provider that the test starts: the
//! relying party's discovery, PKCE, state, nonce and ID-token checks against a real HTTP
//! provider.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::*;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::EncodePrivateKey;
use phr_auth::{
    AppStatus, ClientType, Interaction, Mode, NewApp, NewOrganisation, OidcUpstreamConfig,
    ProfessionalOidcConfig, UpstreamClientAuth,
};
use serde_json::{Value, json};

#[derive(Clone, Copy, PartialEq)]
enum Behaviour {
    ClaimInIdToken,
    ClaimInUserinfo,
    WrongNonce,
    /// A professionals' provider: the identifier, name and organisation claims (the
    /// organisation OID is the provider's `hetu` field).
    Professional,
}

struct Provider {
    issuer: String,
    key: jsonwebtoken::EncodingKey,
    jwk: Value,
    hetu: String,
    behaviour: Behaviour,
    /// code → (nonce, code_challenge)
    codes: Mutex<HashMap<String, (String, String)>>,
}

type Shared = Arc<Provider>;

async fn start_provider(hetu: String, behaviour: Behaviour) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let secret = p256::SecretKey::from_slice(&[42u8; 32]).unwrap();
    let point = secret.public_key().to_encoded_point(false);
    let jwk = json!({
        "kty": "EC", "crv": "P-256", "kid": "upstream-1", "use": "sig", "alg": "ES256",
        "x": URL_SAFE_NO_PAD.encode(point.x().unwrap()),
        "y": URL_SAFE_NO_PAD.encode(point.y().unwrap()),
    });
    let provider = Arc::new(Provider {
        issuer: issuer.clone(),
        key: jsonwebtoken::EncodingKey::from_ec_der(secret.to_pkcs8_der().unwrap().as_bytes()),
        jwk,
        hetu,
        behaviour,
        codes: Mutex::new(HashMap::new()),
    });
    let app = Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/authorize", get(authorize))
        .route("/token", post(token))
        .route("/jwks", get(jwks))
        .route("/userinfo", get(userinfo))
        .with_state(provider);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    issuer
}

async fn discovery(State(p): State<Shared>) -> Json<Value> {
    Json(json!({
        "issuer": p.issuer,
        "authorization_endpoint": format!("{}/authorize", p.issuer),
        "token_endpoint": format!("{}/token", p.issuer),
        "jwks_uri": format!("{}/jwks", p.issuer),
        "userinfo_endpoint": format!("{}/userinfo", p.issuer),
    }))
}

async fn jwks(State(p): State<Shared>) -> Json<Value> {
    Json(json!({ "keys": [p.jwk] }))
}

async fn authorize(State(p): State<Shared>, Query(q): Query<HashMap<String, String>>) -> Response {
    assert_eq!(q["client_id"], "phr-rp");
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["code_challenge_method"], "S256");
    assert!(q["scope"].split(' ').any(|s| s == "openid"));
    let code = uuid::Uuid::new_v4().to_string();
    p.codes.lock().unwrap().insert(
        code.clone(),
        (q["nonce"].clone(), q["code_challenge"].clone()),
    );
    let mut target = url::Url::parse(&q["redirect_uri"]).unwrap();
    target
        .query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &q["state"]);
    Redirect::to(target.as_str()).into_response()
}

async fn token(
    State(p): State<Shared>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let basic = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("phr-rp:upstream-secret")
    );
    if basic != expected {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    let Some((nonce, challenge)) = p.codes.lock().unwrap().remove(&form["code"]) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant"})),
        )
            .into_response();
    };
    if phr_auth::secrets::pkce_s256_challenge(&form["code_verifier"]) != challenge {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant"})),
        )
            .into_response();
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut claims = json!({
        "iss": p.issuer, "sub": "upstream-subject-1", "aud": "phr-rp", "iat": now, "exp": now + 300,
        "nonce": if p.behaviour == Behaviour::WrongNonce { "not-the-nonce".to_owned() } else { nonce },
    });
    if p.behaviour == Behaviour::Professional {
        claims["professional_id"] = json!("vv-77");
        claims["name"] = json!("Doctor Upstream");
        claims["organization_oid"] = json!(format!("urn:oid:{}", p.hetu));
    } else if p.behaviour != Behaviour::ClaimInUserinfo {
        claims["urn:oid:1.2.246.21"] = json!(p.hetu);
    }
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some("upstream-1".into());
    let id_token = jsonwebtoken::encode(&header, &claims, &p.key).unwrap();
    Json(json!({"access_token": "upstream-access", "token_type": "Bearer", "id_token": id_token}))
        .into_response()
}

async fn userinfo(State(p): State<Shared>, headers: HeaderMap) -> Response {
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Bearer upstream-access")
    {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    Json(json!({"sub": "upstream-subject-1", "urn:oid:1.2.246.21": p.hetu})).into_response()
}

async fn production_harness(issuer: String) -> Harness {
    start(move |config| {
        config.mode = Mode::Production;
        config.oidc = Some(OidcUpstreamConfig {
            issuer,
            client_id: "phr-rp".into(),
            client_secret: "upstream-secret".into(),
            hetu_claim: "urn:oid:1.2.246.21".into(),
            scopes: vec!["profile".into()],
            client_auth: UpstreamClientAuth::ClientSecretBasic,
            acr_values: None,
        });
    })
    .await
}

/// authorize → our login → upstream → our callback; returns the callback response.
async fn through_upstream(h: &Harness, browser: &mut Browser, app: &str) -> Page {
    let challenge = phr_auth::secrets::pkce_s256_challenge(VERIFIER);
    let page = browser
        .get(
            &h.http,
            &authorize_url(
                h,
                app,
                "patient/Observation.read offline_access",
                Some(&challenge),
            ),
        )
        .await;
    assert_eq!(
        page.location.as_deref(),
        Some("/oauth/login"),
        "{}",
        page.body
    );
    let login = browser
        .get(&h.http, &format!("{}/oauth/login", h.base))
        .await;
    assert_eq!(login.status, 303, "{}", login.body);
    let upstream = login.location.unwrap();
    // The upstream provider is another site: no cookies of ours go there.
    let response = h.http.get(&upstream).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 303);
    let callback = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        callback.starts_with(&format!("{}/oauth/callback?", h.base)),
        "{callback}"
    );
    browser.get(&h.http, &callback).await
}

#[tokio::test]
async fn production_login_goes_through_the_upstream_provider() {
    let provider = start_provider(hetu("150385", '-', 123), Behaviour::ClaimInIdToken).await;
    let h = production_harness(provider).await;
    let (app, _) = register(
        &h,
        ClientType::Public,
        "patient/Observation.read offline_access",
        AppStatus::Accepted,
    );
    let mut browser = Browser::default();
    let after = through_upstream(&h, &mut browser, &app).await;
    assert_eq!(
        after.location.as_deref(),
        Some("/oauth/terms"),
        "{}",
        after.body
    );
    let terms = browser
        .get(&h.http, &format!("{}/oauth/terms", h.base))
        .await;
    browser
        .post(
            &h.http,
            &format!("{}/oauth/terms", h.base),
            &[("csrf", &csrf_of(&terms.body)), ("decision", "accept")],
        )
        .await;
    let consent = browser
        .get(&h.http, &format!("{}/oauth/consent", h.base))
        .await;
    assert!(
        !consent.body.contains("Testiympäristö"),
        "no sandbox notice in production"
    );
    let done = browser
        .post(
            &h.http,
            &format!("{}/oauth/consent", h.base),
            &[
                ("csrf", &csrf_of(&consent.body)),
                ("decision", "allow"),
                ("item", "0"),
            ],
        )
        .await;
    let code = query_param(&done.location.unwrap(), "code").unwrap();
    let (status, token) = exchange(&h, &app, &code, VERIFIER).await;
    assert_eq!(status, 200, "{token}");
    assert!(
        h.service
            .authorize(Some(&bearer(&token)), "Observation", Interaction::Read)
            .is_ok()
    );
}

#[tokio::test]
async fn identity_code_may_come_from_userinfo() {
    let provider = start_provider(hetu("150385", '-', 124), Behaviour::ClaimInUserinfo).await;
    let h = production_harness(provider).await;
    let (app, _) = register(
        &h,
        ClientType::Public,
        "patient/Observation.read",
        AppStatus::Accepted,
    );
    let after = through_upstream(&h, &mut Browser::default(), &app).await;
    assert_eq!(
        after.location.as_deref(),
        Some("/oauth/terms"),
        "{}",
        after.body
    );
}

#[tokio::test]
async fn id_token_with_wrong_nonce_is_refused() {
    let provider = start_provider(hetu("150385", '-', 125), Behaviour::WrongNonce).await;
    let h = production_harness(provider).await;
    let (app, _) = register(
        &h,
        ClientType::Public,
        "patient/Observation.read",
        AppStatus::Accepted,
    );
    let after = through_upstream(&h, &mut Browser::default(), &app).await;
    assert_eq!(after.status, 401);
    assert!(after.location.is_none());
}

#[tokio::test]
async fn callback_with_forged_state_is_refused() {
    let provider = start_provider(hetu("150385", '-', 126), Behaviour::ClaimInIdToken).await;
    let h = production_harness(provider).await;
    let (app, _) = register(
        &h,
        ClientType::Public,
        "patient/Observation.read",
        AppStatus::Accepted,
    );
    let mut browser = Browser::default();
    let challenge = phr_auth::secrets::pkce_s256_challenge(VERIFIER);
    browser
        .get(
            &h.http,
            &authorize_url(&h, &app, "patient/Observation.read", Some(&challenge)),
        )
        .await;
    browser
        .get(&h.http, &format!("{}/oauth/login", h.base))
        .await;
    let page = browser
        .get(
            &h.http,
            &format!("{}/oauth/callback?code=x&state=forged", h.base),
        )
        .await;
    assert_eq!(page.status, 403);
}

#[tokio::test]
async fn production_serves_only_accepted_apps_and_has_no_sandbox_pages() {
    let provider = start_provider(hetu("150385", '-', 127), Behaviour::ClaimInIdToken).await;
    let h = production_harness(provider).await;
    let (sandbox_app, _) = register(
        &h,
        ClientType::Public,
        "patient/Observation.read",
        AppStatus::Sandbox,
    );
    let challenge = phr_auth::secrets::pkce_s256_challenge(VERIFIER);
    let page = Browser::default()
        .get(
            &h.http,
            &authorize_url(
                &h,
                &sandbox_app,
                "patient/Observation.read",
                Some(&challenge),
            ),
        )
        .await;
    assert_eq!(
        query_param(&page.location.unwrap(), "error").as_deref(),
        Some("unauthorized_client")
    );
    // The registration page moved to the developer console (which answers 501 in
    // production: crates/cli/tests/developer.rs).
    let page = Browser::default()
        .get(&h.http, &format!("{}/apps/register", h.base))
        .await;
    assert_eq!(page.status, 308);
    let response = h
        .http
        .post(format!("{}/oauth/register", h.base))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 403);
    assert!(
        h.service
            .issue_token_for_cli(&adult(), &sandbox_app, "patient/Observation.read")
            .is_err()
    );
}

const PRO_ORG: &str = "1.2.246.10.5555555.10.0";

/// Production with the citizens' provider and a professionals' provider at `issuer`.
async fn professional_harness(issuer: String) -> Harness {
    start(move |config| {
        config.mode = Mode::Production;
        config.oidc = Some(OidcUpstreamConfig {
            issuer: issuer.clone(),
            client_id: "phr-rp".into(),
            client_secret: "upstream-secret".into(),
            hetu_claim: "urn:oid:1.2.246.21".into(),
            scopes: vec![],
            client_auth: UpstreamClientAuth::ClientSecretBasic,
            acr_values: None,
        });
        config.professional_oidc = Some(ProfessionalOidcConfig {
            issuer,
            client_id: "phr-rp".into(),
            client_secret: "upstream-secret".into(),
            scopes: vec![],
            client_auth: UpstreamClientAuth::ClientSecretBasic,
            acr_values: None,
            id_claim: "professional_id".into(),
            name_claim: "name".into(),
            org_claim: "organization_oid".into(),
        });
    })
    .await
}

fn professional_app(h: &Harness) -> String {
    h.service
        .register_org(NewOrganisation {
            oid: PRO_ORG.into(),
            name_fi: "Terveysasema".into(),
            ..NewOrganisation::default()
        })
        .unwrap();
    h.service
        .register_app(
            NewApp {
                app_id: Some("pro-app".into()),
                name: "Potilastietojärjestelmä".into(),
                kind: phr_auth::AppKind::Professional,
                client_type: ClientType::Public,
                redirect_uris: vec![REDIRECT.into()],
                scope: "user/Observation.rs user/Patient.rs".into(),
                contact: None,
                jwks: None,
                jwks_uri: None,
                org: Some(PRO_ORG.into()),
                certificate_oid: None,
                supplier: None,
                platform: None,
                fhir_versions: None,
            },
            AppStatus::Accepted,
        )
        .unwrap()
        .app
        .app_id
}

/// authorize → the professionals' login → upstream → our professional callback.
async fn professional_through_upstream(h: &Harness, app: &str) -> Page {
    let mut browser = Browser::default();
    let challenge = phr_auth::secrets::pkce_s256_challenge(VERIFIER);
    let page = browser
        .get(
            &h.http,
            &authorize_url(
                h,
                app,
                "openid fhirUser user/Observation.rs",
                Some(&challenge),
            ),
        )
        .await;
    assert_eq!(
        page.location.as_deref(),
        Some("/oauth/professional-login"),
        "{}",
        page.body
    );
    let login = browser
        .get(&h.http, &format!("{}/oauth/professional-login", h.base))
        .await;
    assert_eq!(login.status, 303, "{}", login.body);
    let response = h.http.get(login.location.unwrap()).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 303);
    let callback = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        callback.starts_with(&format!("{}/oauth/professional-callback?", h.base)),
        "{callback}"
    );
    browser.get(&h.http, &callback).await
}

#[tokio::test]
async fn production_professionals_sign_in_at_their_identity_provider() {
    let provider = start_provider(PRO_ORG.into(), Behaviour::Professional).await;
    let h = professional_harness(provider).await;
    let app = professional_app(&h);
    let back = professional_through_upstream(&h, &app).await;
    assert_eq!(back.status, 303, "{}", back.body);
    let location = back.location.unwrap();
    assert!(location.starts_with(REDIRECT), "{location}");
    let code = query_param(&location, "code").unwrap();
    let (status, token) = exchange(&h, &app, &code, VERIFIER).await;
    assert_eq!(status, 200, "{token}");
    let context = h
        .service
        .authenticate(Some(&bearer(&token)))
        .expect("a professional's token");
    let professional = context.professional.expect("names the professional");
    assert_eq!(professional.id, "vv-77");
    assert_eq!(professional.name.as_deref(), Some("Doctor Upstream"));
    assert_eq!(professional.org, PRO_ORG);
    assert!(context.patient.is_none());
}

#[tokio::test]
async fn a_professional_of_another_organisation_is_refused() {
    let provider = start_provider("1.2.246.10.9999999.10.0".into(), Behaviour::Professional).await;
    let h = professional_harness(provider).await;
    let app = professional_app(&h);
    let back = professional_through_upstream(&h, &app).await;
    assert_eq!(back.status, 403, "{}", back.body);
    assert!(back.body.contains("toisen organisaation"), "{}", back.body);
}
